"""Golden outputs: does this machine's runtime decide as the reference fp32 model does?

Each model directory ships ``golden.npz`` (listed in its manifest under
``golden`` with its sha256): a few hundred real feature rows from shared
recordings outside MIT-BIH DS2, with the fp32 class probabilities and
decisions computed on the reference machine. :func:`check_model` runs one
loaded model file on those rows and reports the fraction of identical
decisions and the largest probability difference. It is what ``edge model
verify`` and ``edge doctor`` run on a new gateway before it watches a patient:
an int8 kernel that saturates on this CPU (onnxruntime's U8S8 path on x86
without VNNI), a broken wheel or a corrupted file shows up here as
disagreement, not later as wrong alarms.

Rows are chosen away from the decision boundary (``selection`` in the
manifest): a row that sits on the boundary tests quantization noise, not the
runtime, and the model card measures that on whole records instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import ModelError, ModelIntegrityError
from edge.inference.manifest import Manifest, sha256_of

if TYPE_CHECKING:
    from edge.inference import Model

#: Decision agreement below which a model file fails verification (manifests may raise it).
DEFAULT_MIN_AGREEMENT = 0.995


@dataclass(frozen=True)
class GoldenSet:
    """Reference rows of one model: raw features, fp32 probabilities and decisions."""

    path: Path
    features: np.ndarray
    probabilities: np.ndarray
    decisions: np.ndarray
    min_agreement: float
    reference: str

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class GoldenResult:
    """How one model file did on its golden rows, on this machine."""

    rows: int
    agreement: float
    max_prob_diff: float
    disagreements: int
    min_agreement: float

    @property
    def ok(self) -> bool:
        return self.agreement >= self.min_agreement

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "agreement": round(self.agreement, 4),
                "max_prob_diff": round(self.max_prob_diff, 4),
                "disagreements": self.disagreements, "min_agreement": self.min_agreement,
                "ok": self.ok}

    def reason(self, file: str) -> str:
        """One line that says why a file failed (or that it passed)."""
        if self.ok:
            return (f"{file}: {self.agreement:.2%} of {self.rows} golden decisions equal "
                    f"(max |dp| {self.max_prob_diff:.3f})")
        return (f"{file}: only {self.agreement:.2%} of {self.rows} golden decisions match the "
                f"fp32 reference (needs {self.min_agreement:.1%}); this runtime or CPU does "
                f"not compute this file as validated: use the fp32 file")


def load_golden(manifest: Manifest) -> GoldenSet | None:
    """The manifest's golden set, checked against its sha256; None if it lists none."""
    entry = manifest.raw.get("golden")
    if not entry:
        return None
    path = (manifest.directory / str(entry.get("file", ""))).resolve()
    if manifest.directory.resolve() not in path.parents or not path.is_file():
        raise ModelIntegrityError(f"model {manifest.name}: golden file {entry.get('file')!r} "
                                  "listed in the manifest is missing")
    digest = sha256_of(path)
    if digest != str(entry.get("sha256", "")).lower():
        raise ModelIntegrityError(f"model {manifest.name}: {path.name} sha256 {digest[:12]}... "
                                  "does not match the manifest; refusing it")
    try:
        with np.load(path, allow_pickle=False) as z:
            x = np.asarray(z["features"], dtype=np.float32)
            p = np.asarray(z["probabilities"], dtype=np.float32)
            d = np.asarray(z["decisions"], dtype=np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(f"model {manifest.name}: cannot read {path.name} ({exc})") from exc
    n_cls = len(manifest.classes)
    if x.ndim != 2 or x.shape[1] != manifest.spec.n_features or p.shape != (len(x), n_cls) \
            or d.shape != (len(x),):
        raise ModelError(f"model {manifest.name}: {path.name} has shapes {x.shape}, {p.shape}, "
                         f"{d.shape}; expected (n, {manifest.spec.n_features}), (n, {n_cls}), (n,)")
    return GoldenSet(path, x, p, d, float(entry.get("min_agreement", DEFAULT_MIN_AGREEMENT)),
                     str(entry.get("reference", "")))


def compare(manifest: Manifest, golden: GoldenSet, probs: np.ndarray) -> GoldenResult:
    """Agreement of ``probs`` (this machine's outputs on the golden rows) with the reference."""
    dec = manifest.decide(probs)
    equal = dec == golden.decisions
    diff = float(np.max(np.abs(np.asarray(probs, np.float64) - golden.probabilities))) \
        if len(golden) else 0.0
    return GoldenResult(len(golden), float(np.mean(equal)) if len(golden) else 1.0, diff,
                        int(np.sum(~equal)), golden.min_agreement)


def check_model(model: Model, golden: GoldenSet | None = None) -> GoldenResult | None:
    """Run ``model`` on its golden rows (None when its manifest has none)."""
    golden = golden if golden is not None else load_golden(model.manifest)
    if golden is None:
        return None
    return compare(model.manifest, golden, model.run(golden.features))
