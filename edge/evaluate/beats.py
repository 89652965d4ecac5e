"""Beat-by-beat comparison of detected QRS complexes with reference annotations.

Follows ANSI/AAMI EC57 (Testing and reporting performance results of cardiac
rhythm and ST segment measurement algorithms): a detection matches a reference
beat when they are at most 150 ms apart, each reference beat is matched to at
most one detection and vice versa, and results over several records are gross
statistics (sum TP, FP, FN over records, then compute the ratios).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AAMI_BEAT_SYMBOLS", "BeatMatch", "match_beats", "match_pairs", "reference_beats"]

AAMI_BEAT_SYMBOLS: frozenset[str] = frozenset(
    # AAMI classes N (N L R e j), S (A a J S), V (V E), F (F), Q (/ f Q) ...
    ["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q"]
    # ... and the other MIT/WFDB beat codes EC57 counts as beats: left or right
    # bundle branch block beat (B), unclassifiable beat (?), supraventricular
    # escape (n), R-on-T premature ventricular contraction (r).
    + ["B", "?", "n", "r"]
)
"""WFDB annotation symbols that are QRS complexes (beats) for ANSI/AAMI EC57.

Everything else (rhythm changes ``+``, noise ``~``, isolated QRS-like artefact
``|``, comments ``"``, flutter waves ``!``, ventricular flutter start/end ``[``
``]``, non-conducted P wave ``x`` ...) is not a beat."""


@dataclass(frozen=True)
class BeatMatch:
    """Counts of one comparison; add them to total several records (gross statistics).

    * ``se`` (sensitivity) = TP / (TP + FN); 1.0 when there is nothing to find
      (TP + FN == 0).
    * ``ppv`` (positive predictivity) = TP / (TP + FP); 1.0 when nothing was
      detected (TP + FP == 0).
    * ``f1`` = harmonic mean of ``se`` and ``ppv`` (equals 2TP / (2TP + FP + FN)
      whenever that is defined); 0.0 when both are 0.
    """

    tp: int
    fp: int
    fn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn"):
            v = getattr(self, name)
            if int(v) != v or v < 0:
                raise ValueError(f"BeatMatch.{name} must be a non-negative integer")

    @property
    def se(self) -> float:
        n = self.tp + self.fn
        return 1.0 if n == 0 else self.tp / n

    @property
    def ppv(self) -> float:
        n = self.tp + self.fp
        return 1.0 if n == 0 else self.tp / n

    @property
    def f1(self) -> float:
        se, ppv = self.se, self.ppv
        return 0.0 if se + ppv == 0 else 2.0 * se * ppv / (se + ppv)

    def __add__(self, other: object) -> BeatMatch:
        if not isinstance(other, BeatMatch):
            return NotImplemented
        return BeatMatch(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def __radd__(self, other: object) -> BeatMatch:
        # Lets sum(matches) work (sum starts from 0).
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def _as_index_array_unsorted(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of sample indices")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must not contain NaN or infinity")
    return arr.astype(np.float64)


def _as_index_array(a: Any, name: str) -> np.ndarray:
    return np.sort(_as_index_array_unsorted(a, name))


def match_pairs(
    reference: np.ndarray,
    detected: np.ndarray,
    fs: float,
    tolerance_s: float = 0.150,
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matched pairs ``(reference positions, detection positions)``.

    Positions index the inputs as given (not sorted). Candidate pairs closer
    than or exactly at the tolerance are taken nearest first (ties: earlier
    reference beat, then earlier detection); each reference beat and each
    detection is used at most once.
    """
    if not fs > 0:
        raise ValueError("fs must be positive")
    if not tolerance_s >= 0:
        raise ValueError("tolerance_s must be non-negative")
    ref_raw = _as_index_array_unsorted(reference, "reference")
    det_raw = _as_index_array_unsorted(detected, "detected")
    ref_order = np.argsort(ref_raw, kind="stable")
    det_order = np.argsort(det_raw, kind="stable")
    ref, det = ref_raw[ref_order], det_raw[det_order]
    empty = np.zeros(0, dtype=np.int64)
    if ref.size == 0 or det.size == 0:
        return empty, empty
    tol = tolerance_s * fs * (1 + 1e-12)
    # All pairs within tolerance: for each reference beat the detections in
    # [r - tol, r + tol] are det[lo[i]:hi[i]].
    lo = np.searchsorted(det, ref - tol, side="left")
    hi = np.searchsorted(det, ref + tol, side="right")
    counts = hi - lo
    ri = np.repeat(np.arange(ref.size), counts)
    if ri.size == 0:
        return empty, empty
    starts = np.repeat(lo - np.cumsum(np.concatenate([[0], counts[:-1]])), counts)
    di = starts + np.arange(ri.size)
    dist = np.abs(ref[ri] - det[di])
    order = np.lexsort((di, ri, dist))
    ref_used = np.zeros(ref.size, dtype=bool)
    det_used = np.zeros(det.size, dtype=bool)
    pr: list[int] = []
    pd: list[int] = []
    for k in order.tolist():
        i, j = ri[k], di[k]
        if not ref_used[i] and not det_used[j]:
            ref_used[i] = det_used[j] = True
            pr.append(int(i))
            pd.append(int(j))
    return (ref_order[np.asarray(pr, dtype=np.int64)].astype(np.int64),
            det_order[np.asarray(pd, dtype=np.int64)].astype(np.int64))


def match_beats(
    reference: np.ndarray,
    detected: np.ndarray,
    fs: float,
    tolerance_s: float = 0.150,
) -> BeatMatch:
    """Match detections to reference beats one-to-one within +/- ``tolerance_s``.

    Candidate pairs closer than or exactly at the tolerance are taken nearest
    first (ties: earlier reference beat, then earlier detection); each reference
    beat and each detection is used at most once.  Unmatched reference beats are
    false negatives, unmatched detections false positives.  Inputs are sample
    indices at rate ``fs`` in any order.
    """
    ref = _as_index_array(reference, "reference")
    det = _as_index_array(detected, "detected")
    pr, _ = match_pairs(ref, det, fs, tolerance_s)
    tp = int(pr.size)
    return BeatMatch(tp=tp, fp=int(det.size) - tp, fn=int(ref.size) - tp)


def reference_beats(annotation: Any) -> np.ndarray:
    """Sample indices of the beat annotations (``AAMI_BEAT_SYMBOLS``) only.

    ``annotation`` is a ``wfdb.Annotation`` or any object with ``sample`` and
    ``symbol`` sequences of equal length.  Returns int64 indices in file order.
    """
    samples = np.asarray(annotation.sample, dtype=np.int64)
    symbols = list(annotation.symbol)
    if samples.shape != (len(symbols),):
        raise ValueError("annotation.sample and annotation.symbol differ in length")
    keep = np.fromiter((s in AAMI_BEAT_SYMBOLS for s in symbols), dtype=bool, count=len(symbols))
    return samples[keep]
