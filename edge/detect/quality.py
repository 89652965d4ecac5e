"""ECG signal quality indices, and a per-stream quality timeline rules can consult.

Indices (per window of ``window_s``, :class:`~edge.config.EcgQualityConfig`):

* **bSQI**: agreement of two independent beat detectors, matched beats over
  all beats (``N_matched / (N_1 + N_2 - N_matched)``, 150 ms window). Li Q,
  Mark RG, Clifford GD, *Robust heart rate estimation from multiple
  asynchronous noisy sources using signal quality indices and a Kalman
  filter*, Physiol Meas 2008;29(1):15-32, sec. 2.3. Here the detectors are the
  project's QRS detector (:func:`edge.dsp.qrs.ecg_peaks`, Pan-Tompkins /
  Hamilton lineage) and a wavelet-free slope detector (:func:`slope_peaks`:
  band-pass 8-20 Hz, squared derivative, 120 ms integration, adaptive
  threshold): different enough to disagree on noise.
* **kSQI**: kurtosis of the window; a clean ECG is peaky (> 5), Gaussian noise
  has 3 (Li et al. 2008; Behar J, Oster J, Li Q, Clifford GD, *ECG signal
  quality during arrhythmia and its application to false alarm reduction*,
  IEEE TBME 2013;60(6):1660-1666).
* **basSQI**: share of the power in 1-40 Hz of the power in 0-40 Hz (baseline
  wander) (Li et al. 2008).

The combined index is bSQI weighted by the kSQI and basSQI scores (each mapped
to [0, 1]); a window below ``usable_threshold`` is unusable.

:class:`EcgQualityProcessor` computes it every ``step_s`` on an ECG stream
and keeps a :class:`QualityTimeline`; a rule asks ``timeline.usable(i)`` ("is
the signal usable around sample i?") before alarming.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy import signal, stats

from edge.config import EcgQualityConfig
from edge.dsp.filters import butter_sos, zero_phase
from edge.pipeline import Item, Output, StreamContext
from edge.types import Episode, Gap, Priority
from edge.windowing import Window


def slope_peaks(ecg: np.ndarray, fs: float) -> np.ndarray:
    """A simple second QRS detector for bSQI (squared slope energy, adaptive threshold).

    Band-pass 8-20 Hz, squared first difference, 120 ms moving integration,
    peaks above 30 % of the window's 98th percentile at least 250 ms apart,
    each moved to the largest absolute band-passed sample within 100 ms.
    """
    x = np.asarray(ecg, dtype=np.float64)
    if x.size < int(fs):
        return np.zeros(0, dtype=np.int64)
    bp = zero_phase(butter_sos(2, (8.0, min(20.0, 0.45 * fs)), fs), x)
    d = np.square(np.diff(bp, prepend=bp[0]))
    w = max(1, int(0.12 * fs))
    e = np.convolve(d, np.ones(w) / w, mode="same")
    thr = 0.3 * np.percentile(e, 98)
    pk, _ = signal.find_peaks(e, height=thr, distance=max(1, int(0.25 * fs)))
    half = int(0.1 * fs)
    out = [max(0, p - half) + int(np.argmax(np.abs(bp[max(0, p - half):p + half])))
           for p in pk]
    return np.asarray(out, dtype=np.int64)


def bsqi(beats_a: np.ndarray, beats_b: np.ndarray, fs: float, tolerance_s: float) -> float:
    """Li et al. 2008 bSQI: matched / (n_a + n_b - matched); 0 when neither found a beat."""
    a, b = np.asarray(beats_a), np.asarray(beats_b)
    if a.size == 0 and b.size == 0:
        return 0.0
    if a.size == 0 or b.size == 0:
        return 0.0
    tol = tolerance_s * fs
    j = np.clip(np.searchsorted(b, a), 1, b.size) - 1
    near = np.minimum(np.abs(a - b[j]), np.abs(a - b[np.minimum(j + 1, b.size - 1)]))
    matched = int((near <= tol).sum())
    return matched / float(a.size + b.size - matched)


def ksqi(ecg: np.ndarray) -> float:
    """Pearson kurtosis of the window (3 for Gaussian noise)."""
    x = np.asarray(ecg, dtype=np.float64)
    if x.size < 4 or np.std(x) == 0:
        return 0.0
    return float(stats.kurtosis(x, fisher=False))


def bassqi(ecg: np.ndarray, fs: float) -> float:
    """Power in 1-40 Hz over power in 0-40 Hz (Welch)."""
    x = np.asarray(ecg, dtype=np.float64)
    f, p = signal.welch(x - x.mean(), fs=fs, nperseg=min(x.size, int(4 * fs)))
    total = p[f <= 40].sum()
    if total <= 0:
        return 0.0
    return float(p[(f >= 1) & (f <= 40)].sum() / total)


@dataclass(frozen=True)
class EcgQuality:
    bsqi: float
    ksqi: float
    bassqi: float
    sqi: float  # combined, in [0, 1]


def ecg_quality(ecg: np.ndarray, fs: float, config: EcgQualityConfig | None = None,
                reference_beats: np.ndarray | None = None) -> EcgQuality:
    """All indices of one window (in mV). ``reference_beats``: detector A's beats if known."""
    from edge.dsp.qrs import ecg_peaks

    c = config or EcgQualityConfig()
    x = np.asarray(ecg, dtype=np.float64)
    a = ecg_peaks(x, fs) if reference_beats is None else np.asarray(reference_beats)
    b = slope_peaks(x, fs)
    bs = bsqi(np.asarray(a), b, fs, c.bsqi_tolerance_s)
    k = ksqi(x)
    bas = bassqi(x, fs)
    k_score = float(np.clip((k - 3.0) / (c.ksqi_clean - 3.0), 0.0, 1.0))
    bas_score = float(np.clip((bas - 0.5) / (c.bassqi_clean - 0.5), 0.0, 1.0))
    return EcgQuality(bs, k, bas, bs * (0.75 + 0.25 * k_score) * (0.9 + 0.1 * bas_score))


class QualityTimeline:
    """Quality of successive windows of one stream: ask whether sample ``i`` is usable."""

    def __init__(self, threshold: float, keep: int = 4096) -> None:
        self.threshold = threshold
        self.keep = keep
        self._ends: list[int] = []
        self._starts: list[int] = []
        self._values: list[float] = []

    def add(self, start: int, end: int, value: float) -> None:
        self._starts.append(start)
        self._ends.append(end)
        self._values.append(value)
        if len(self._ends) > self.keep:
            del self._starts[:-self.keep], self._ends[:-self.keep], self._values[:-self.keep]

    def quality_at(self, index: int) -> float | None:
        """The quality of the latest window covering ``index`` (None when none covers it)."""
        k = bisect_right(self._starts, index) - 1
        while k >= 0 and self._starts[k] <= index:
            if index < self._ends[k]:
                return self._values[k]
            k -= 1
            if k >= 0 and self._ends[k] <= index:
                break
        return None

    def usable(self, index: int, unknown: bool = True) -> bool:
        """Is the signal usable around sample ``index``? ``unknown`` when not yet assessed."""
        q = self.quality_at(index)
        return unknown if q is None else q >= self.threshold


class EcgQualityProcessor:
    """Computes ECG quality every ``step_s`` over ``window_s`` and records it in a timeline.

    Emits nothing into the pipeline; rules hold the same :attr:`timeline`
    object and query it. Put it first in the ECG stream's processor list.
    """

    name = "ecg_quality"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: EcgQualityConfig,
                 timeline: QualityTimeline | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self.timeline = timeline or QualityTimeline(config.usable_threshold)
        self.win = int(round(config.window_s * ctx.fs))
        self.step = int(round(config.step_s * ctx.fs))
        self._buf = np.zeros(0)
        self._buf_start = 0
        self.latest: EcgQuality | None = None
        self._downgraded: dict[str, str] = {}  # episode id -> priority before the downgrade

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            self._buf = np.zeros(0)
            return []
        assert isinstance(item, Window)
        x = item.data[:, 0].astype(np.float64)
        if self._buf.size == 0 or self._buf_start + self._buf.size != item.start_index:
            self._buf = x
            self._buf_start = item.start_index
        else:
            self._buf = np.concatenate([self._buf, x])
        while self._buf.size >= self.win:
            q = ecg_quality(self._buf[:self.win], self.ctx.fs, self.config)
            self.latest = q
            self.timeline.add(self._buf_start, self._buf_start + self.win, q.sqi)
            self._buf = self._buf[self.step:]
            self._buf_start += self.step
        return []

    def flush(self) -> Iterable[Output]:
        return []

    def gate_episode(self, episode: Episode) -> Episode:
        """Downgrade an alarm that lies mostly on unusable signal to info priority.

        Called by the pipeline for every episode of this stream before it is
        stored or passed on (see ``Pipeline``: processors offering
        ``gate_episode``). A downgrade is sticky across an episode's revisions.
        """
        if episode.priority is Priority.INFO and episode.id not in self._downgraded:
            return episode
        fraction = self.usable_fraction(episode.onset_index, episode.offset_index)
        prior = self._downgraded.get(episode.id)
        if prior is None and (fraction is None
                              or fraction >= self.config.gate_min_usable_fraction):
            return episode
        original = prior or episode.priority.value
        self._downgraded[episode.id] = original
        return replace(episode, priority=Priority.INFO, details={
            **episode.details, "downgraded_from": original,
            "usable_signal_fraction": None if fraction is None else round(fraction, 2)})

    def usable_fraction(self, start: int, end: int) -> float | None:
        """Fraction of one-second probes in [start, end] whose window is usable (None: unknown)."""
        step = max(1, int(self.ctx.fs))
        probes = [self.timeline.quality_at(i) for i in range(start, max(start, end) + 1, step)]
        known = [q for q in probes if q is not None]
        if not known:
            return None
        return sum(q >= self.timeline.threshold for q in known) / len(known)
