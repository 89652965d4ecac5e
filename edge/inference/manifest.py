"""Model manifests: what a model is, what it expects, and the sha256 of every file.

``models/<name>/manifest.json`` (written by ``tools/train_*.py``)::

    {"name": "af_rr", "version": "1.0.0", "task": "...",
     "input": {"features": "af_rr_v1", "n_features": 41, "sample_rate_hz": null,
               "min_sample_rate_hz": null, "window": {...},
               "normalisation": {"mean": [...], "std": [...]}},
     "outputs": {"classes": ["non_af", "af"], "activation": "softmax"},
     "thresholds": {"af_on": 0.6, ...},
     "files": [{"path": "af_rr.int8.onnx", "format": "onnx", "backend": "onnxruntime",
                "precision": "int8", "sha256": "...", "bytes": 1234}, ...],
     "training": {...}, "metrics": {...}, "limits": [...]}

A manifest is checked before any model file is opened: unknown feature set,
inconsistent normalisation, missing file, or a sha256 that does not match
raise a :class:`~edge.errors.ModelError` subclass with one clear line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError, ModelIntegrityError, ModelSpecError
from edge.inference import features as F

MANIFEST_NAME = "manifest.json"

#: Feature sets this runtime implements, with their vector length.
KNOWN_FEATURES: dict[str, int] = {
    F.AF_FEATURES: F.AF_N_FEATURES,
    F.BEAT_FEATURES: F.BEAT_N_FEATURES,
    F.QUALITY_FEATURES: F.QUALITY_N_FEATURES,
}

FORMATS = {".onnx": ("onnx", "onnxruntime"), ".tflite": ("tflite", "litert")}


@dataclass(frozen=True)
class InputSpec:
    """How to prepare a model's input (see :mod:`edge.inference.features`)."""

    features: str
    n_features: int
    mean: np.ndarray
    std: np.ndarray
    sample_rate_hz: float | None = None  # rate the waveform is resampled to, if any
    min_sample_rate_hz: float | None = None  # lowest stream rate the features support
    window: dict[str, Any] = field(default_factory=dict)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ModelSpecError(f"input has shape {x.shape}, model expects (batch, "
                                 f"{self.n_features}) {self.features} features")
        return ((x - self.mean) / self.std).astype(np.float32)

    def check_stream(self, fs: float, model: str) -> None:
        """Refuse a stream whose sample rate the features cannot use."""
        if self.min_sample_rate_hz is not None and fs < self.min_sample_rate_hz:
            raise ModelSpecError(f"model {model}: stream sample rate {fs:g} Hz is below the "
                                 f"{self.min_sample_rate_hz:g} Hz its input spec needs")


@dataclass(frozen=True)
class ModelFile:
    path: Path
    format: str
    backend: str
    precision: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    task: str
    spec: InputSpec
    classes: tuple[str, ...]
    thresholds: dict[str, float]
    files: tuple[ModelFile, ...]
    directory: Path
    raw: dict[str, Any]

    @property
    def default_precision(self) -> str:
        """The precision this model runs at unless configured otherwise.

        ``default_precision`` in the manifest: int8 only where its int8 files decide
        as fp32 does on the golden rows (tools/requantize.py measures it).
        """
        have = {f.precision for f in self.files}
        want = str(self.raw.get("default_precision", "int8" if "int8" in have else "fp32"))
        return want if want in have else sorted(have)[0]

    def file(self, precision: str = "auto", fmt: str | None = None) -> ModelFile:
        """The file of ``precision`` (``int8``/``fp32``, ``auto`` = :attr:`default_precision`)
        and format (``onnx``/``tflite``)."""
        if precision == "auto":
            precision = self.default_precision
        for f in self.files:
            if f.precision == precision and (fmt is None or f.format == fmt):
                return f
        have = ", ".join(f"{f.format}/{f.precision}" for f in self.files)
        raise ModelError(f"model {self.name}: no {fmt or 'any'}/{precision} file "
                         f"(manifest lists {have})")

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Class index per row under the manifest's decision rule.

        ``outputs.decision == "argmax"``: the most probable class. Otherwise a
        two-class model with ``thresholds.decision`` decides the second class when
        its probability reaches that threshold (AF: p(af) >= 0.5).
        """
        p = np.asarray(probs)
        rule = self.raw.get("outputs", {}).get("decision", "argmax")
        if rule != "argmax" and len(self.classes) == 2 and "decision" in self.thresholds:
            return (p[:, 1] >= self.thresholds["decision"]).astype(np.int64)
        return np.argmax(p, axis=1).astype(np.int64)

    def decision_margin(self, probs: np.ndarray) -> np.ndarray:
        """Distance of each row's probabilities from the decision boundary (0 = on it)."""
        p = np.asarray(probs, dtype=np.float64)
        rule = self.raw.get("outputs", {}).get("decision", "argmax")
        if rule != "argmax" and len(self.classes) == 2 and "decision" in self.thresholds:
            return np.abs(p[:, 1] - self.thresholds["decision"])
        top = np.sort(p, axis=1)
        return (top[:, -1] - top[:, -2]) / 2.0

    def verify_files(self) -> None:
        """Check every file exists and its sha256 matches (raises ModelIntegrityError)."""
        for f in self.files:
            verify_sha256(f, self.name)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(f: ModelFile, model: str) -> None:
    if not f.path.is_file():
        raise ModelIntegrityError(f"model {model}: file {f.path} listed in the manifest is missing")
    digest = sha256_of(f.path)
    if digest != f.sha256:
        raise ModelIntegrityError(f"model {model}: {f.path.name} sha256 {digest[:12]}... does "
                                  f"not match the manifest ({f.sha256[:12]}...); refusing it")


def _require(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ModelError(f"{where}: manifest has no {key!r}")
    return d[key]


def parse_manifest(raw: dict[str, Any], directory: Path, where: str) -> Manifest:
    name = str(_require(raw, "name", where))
    inp = _require(raw, "input", where)
    feats = str(_require(inp, "features", where))
    if feats not in KNOWN_FEATURES:
        raise ModelSpecError(f"{where}: input features {feats!r} are not implemented by this "
                             f"runtime (known: {', '.join(sorted(KNOWN_FEATURES))})")
    n = int(_require(inp, "n_features", where))
    if n != KNOWN_FEATURES[feats]:
        raise ModelSpecError(f"{where}: input spec says {n} {feats} features, this runtime "
                             f"computes {KNOWN_FEATURES[feats]}")
    norm = inp.get("normalisation") or {}
    mean = np.asarray(norm.get("mean", [0.0] * n), dtype=np.float32)
    std = np.asarray(norm.get("std", [1.0] * n), dtype=np.float32)
    if mean.shape != (n,) or std.shape != (n,) or not np.all(std > 0):
        raise ModelSpecError(f"{where}: normalisation mean/std must be {n} values, std > 0")
    spec = InputSpec(feats, n, mean, std, inp.get("sample_rate_hz"),
                     inp.get("min_sample_rate_hz"), dict(inp.get("window") or {}))
    files = []
    for entry in _require(raw, "files", where):
        rel = str(_require(entry, "path", where))
        p = (directory / rel).resolve()
        if directory.resolve() not in p.parents:
            raise ModelError(f"{where}: file path {rel!r} leaves the model directory")
        suffix = p.suffix.lower()
        if suffix not in FORMATS:
            raise ModelError(f"{where}: {rel}: unknown model format (expected .onnx or .tflite)")
        fmt, backend = FORMATS[suffix]
        files.append(ModelFile(p, fmt, backend, str(entry.get("precision", "fp32")),
                               str(_require(entry, "sha256", where)).lower(),
                               int(entry.get("bytes", -1))))
    if not files:
        raise ModelError(f"{where}: manifest lists no model files")
    classes = tuple(str(c) for c in _require(raw.get("outputs", {}), "classes", where))
    return Manifest(name, str(_require(raw, "version", where)), str(raw.get("task", "")),
                    spec, classes, {k: float(v) for k, v in raw.get("thresholds", {}).items()},
                    tuple(files), directory, raw)


def load_manifest(path: str | Path) -> Manifest:
    """Read ``path`` (a manifest.json, or the directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.is_file():
        raise ModelError(f"{p}: model manifest not found")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{p}: not a readable JSON manifest ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"{p}: manifest must be a JSON object")
    return parse_manifest(raw, p.parent, str(p))


def find_manifest_for(file: Path) -> Manifest | None:
    """The manifest in ``file``'s directory that lists it, if any."""
    mp = file.parent / MANIFEST_NAME
    if not mp.is_file():
        return None
    man = load_manifest(mp)
    for f in man.files:
        if f.path == file.resolve():
            return man
    return None


def file_entry(path: Path, precision: str) -> dict[str, Any]:
    """A ``files`` entry for a manifest (used by the training tools)."""
    fmt, backend = FORMATS[path.suffix.lower()]
    return {"path": path.name, "format": fmt, "backend": backend, "precision": precision,
            "sha256": sha256_of(path), "bytes": path.stat().st_size}
