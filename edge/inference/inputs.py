"""Model inputs from files: feature rows (.npy / .csv) or a recording's ECG.

Used by ``edge model run`` and ``edge model verify``; the recording path runs
the same feature functions as the pipeline processors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.errors import ModelSpecError, RecordFormatError
from edge.inference import features as F
from edge.inference.manifest import InputSpec


def load_feature_rows(path: str | Path, spec: InputSpec) -> np.ndarray:
    """Raw feature rows (n, n_features) from a .npy file or a comma-separated text file."""
    p = Path(path)
    try:
        x = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise RecordFormatError(f"{p}: cannot read feature rows ({exc})") from exc
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    if x.shape[1] != spec.n_features:
        raise ModelSpecError(f"{p}: rows have {x.shape[1]} values, the model takes "
                             f"{spec.n_features} {spec.features} features")
    return x


def features_from_signal(spec: InputSpec, signal_mv: np.ndarray,
                         fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(feature rows, sample index each row refers to) of one ECG channel."""
    from edge.dsp.qrs import ecg_peaks

    x = np.asarray(signal_mv, dtype=np.float64)
    spec.check_stream(fs, spec.features)
    if spec.features == F.AF_FEATURES:
        peaks = ecg_peaks(x, fs)
        hop = int(spec.window.get("hop_beats", 8))
        win, ends = F.rr_windows(peaks, fs, hop)
        return (F.af_features(win) if len(win) else np.zeros((0, F.AF_N_FEATURES), np.float32),
                peaks[ends] if len(ends) else np.zeros(0, np.int64))
    if spec.features == F.BEAT_FEATURES:
        peaks = ecg_peaks(x, fs)
        rows, ok = F.beat_feature_rows(x, fs, peaks)
        return rows[ok], peaks[ok]
    if spec.features == F.QUALITY_FEATURES:
        n = int(F.QUALITY_WINDOW_S * fs)
        starts = np.arange(0, len(x) - n + 1, n)
        qrows = [F.quality_features(x[s:s + n], fs) for s in starts]
        return (np.stack(qrows) if qrows else np.zeros((0, F.QUALITY_N_FEATURES), np.float32),
                starts)
    raise ModelSpecError(f"no signal preprocessing for features {spec.features!r}")
