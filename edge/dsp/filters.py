"""Butterworth designs and zero-phase filtering, cached for per-beat and per-window use.

``scipy.signal.sosfiltfilt`` recomputes the filter's steady-state initial
conditions (``sosfilt_zi``, a linear solve per section) on every call; the
beat classifier filters one short segment per beat, so that solve was a
tenth of the pipeline's time. :func:`zero_phase` does exactly what
``sosfiltfilt`` does (odd extension, forward and backward ``sosfilt`` from
scaled steady-state conditions) with the conditions computed once per
design; ``tests/test_filters.py`` checks that the output is identical.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal as sps


@lru_cache(maxsize=64)
def _butter(order: int, band: tuple[float, float], fs: float) -> np.ndarray:
    return sps.butter(order, list(band), btype="bandpass", fs=fs, output="sos")


def butter_sos(order: int, band: tuple[float, float], fs: float) -> np.ndarray:
    """A band-pass Butterworth design in second-order sections (designed once, a copy)."""
    return _butter(int(order), (float(band[0]), float(band[1])), float(fs)).copy()


@lru_cache(maxsize=64)
def _steady_state(sos_bytes: bytes, n_sections: int) -> np.ndarray:
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    return sps.sosfilt_zi(sos)


def zero_phase(sos: np.ndarray, x: np.ndarray, padlen: int | None = None) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, padlen=padlen)`` for 1-D ``x`` (odd padding)."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n_sections = sos.shape[0]
    if padlen is None:
        # scipy's default: 3 * (2 * len(sos) + 1 - min(number of zeros, number of poles))
        ntaps = 2 * n_sections + 1
        ntaps -= min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
        padlen = 3 * ntaps
    if x.shape[0] <= padlen:
        raise ValueError(f"zero_phase needs more than {padlen} samples, got {x.shape[0]}")
    zi = _steady_state(sos.tobytes(), n_sections)  # scaled copies below: never written
    if padlen > 0:
        ext = np.concatenate((2 * x[0] - x[padlen:0:-1], x,
                              2 * x[-1] - x[-2:-(padlen + 2):-1]))
    else:
        ext = x
    y, _ = sps.sosfilt(sos, ext, zi=zi * ext[0])
    y, _ = sps.sosfilt(sos, y[::-1], zi=zi * y[-1])
    y = y[::-1]
    return y[padlen:len(y) - padlen] if padlen > 0 else y
