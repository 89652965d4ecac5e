"""Real model inputs from the shared recordings: calibration, golden and cross-CPU sets.

Every row is computed by the runtime's own feature code (``edge.inference.inputs``
over the runtime's QRS detector), so a row here is exactly what the pipeline
feeds the model on the same signal. Only records outside MIT-BIH DS2 are used
for calibration and golden rows (``../shared/data/README.md``); DS2 records
are read only where a caller names them for a cross-CPU comparison.

    from model_data import rows_for
    x, where = rows_for("beat_v2", ["mitdb-ds1/208", "cpsc2021/data_101_1"])
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.inference import features as F  # noqa: E402
from edge.inference.inputs import features_from_signal  # noqa: E402
from edge.inference.manifest import InputSpec  # noqa: E402
from edge.trace.recordings import data_dir, load_wfdb  # noqa: E402

#: MIT-BIH DS2 (de Chazal 2004): never calibration, golden or training rows.
DS2 = frozenset([
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213",
    "214", "219", "221", "222", "228", "231", "232", "233", "234",
])

#: MIT-BIH DS1 (de Chazal 2004): the training records of the inter-patient protocol.
DS1 = [
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201",
    "203", "205", "207", "208", "209", "215", "220", "223", "230",
]


def is_ds2(record: str) -> bool:
    """True for a MIT-BIH DS2 record path like ``mitdb/100`` or ``mitdb-signal-only/202``."""
    parts = record.replace("\\", "/").split("/")
    return len(parts) >= 2 and parts[-2].startswith("mitdb") and parts[-1] in DS2


def _spec(features: str) -> InputSpec:
    n = {F.BEAT_FEATURES: F.BEAT_N_FEATURES, F.AF_FEATURES: F.AF_N_FEATURES,
         F.QUALITY_FEATURES: F.QUALITY_N_FEATURES}[features]
    window = {"hop_beats": 8} if features == F.AF_FEATURES else {}
    return InputSpec(features, n, np.zeros(n, np.float32), np.ones(n, np.float32),
                     window=window)


def record_rows(features: str, record: str) -> np.ndarray:
    """Feature rows of one record's first ECG channel (``record`` relative to the data dir)."""
    rec = load_wfdb(data_dir() / record, annotator=None)
    x, _ = features_from_signal(_spec(features), rec.signal[:, 0], rec.fs)
    return np.asarray(x, dtype=np.float32)


def cinc2017_rows(features: str, limit: int | None = None) -> np.ndarray:
    """Feature rows of the CinC 2017 validation records (read from .mat, see the data README)."""
    from scipy.io import loadmat

    d = data_dir() / "cinc2017-validation"
    out = []
    names = sorted(p.stem for p in d.glob("*.mat"))[:limit]
    for name in names:
        fs = float((d / f"{name}.hea").read_text().split()[2])
        sig = loadmat(str(d / f"{name}.mat"))["val"].astype(np.float64).ravel() / 1000.0
        x, _ = features_from_signal(_spec(features), sig, fs)
        if len(x):
            out.append(np.asarray(x, np.float32))
    return np.concatenate(out) if out else np.zeros((0, _spec(features).n_features), np.float32)


def rows_for(features: str, records: list[str]) -> tuple[np.ndarray, list[str]]:
    """Rows of several records, and the record each row comes from."""
    xs, where = [], []
    for r in records:
        x = cinc2017_rows(features) if r == "cinc2017-validation" else record_rows(features, r)
        xs.append(x)
        where += [r] * len(x)
    return np.concatenate(xs), where


#: Records the calibration and golden rows of each feature set come from (no DS2 record).
CALIBRATION_RECORDS: dict[str, list[str]] = {
    F.BEAT_FEATURES: [f"mitdb-ds1/{r}" for r in DS1],
    F.AF_FEATURES: [f"mitdb-ds1/{r}" for r in DS1] + ["cinc2017-validation"]
    + [f"cpsc2021/{p.stem}" for p in sorted((data_dir() / "cpsc2021").glob("*.hea"))],
    F.QUALITY_FEATURES: ["cinc2017-validation"] + [f"mitdb-ds1/{r}" for r in DS1[::3]],
}


def calibration_rows(features: str, max_rows: int = 20000, seed: int = 0) -> np.ndarray:
    """Up to ``max_rows`` rows drawn evenly from :data:`CALIBRATION_RECORDS` (no DS2)."""
    recs = CALIBRATION_RECORDS[features]
    assert not any(is_ds2(r) for r in recs)
    x, _ = rows_for(features, recs)
    if len(x) > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))
        x = x[idx]
    return x
