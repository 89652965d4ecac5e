"""AF episodes from the AF model's RR-window probabilities (one module, three parts).

* :class:`RrWindower` turns labelled beats into windows of
  :data:`~edge.inference.features.AF_WINDOW_RR` RR intervals every
  ``AfConfig.hop_beats`` beats. An RR interval that begins or ends at a beat
  the beat classifier labels ectopic (``AfConfig.exclude_rr_labels``) is not
  an AF interval and is left out: a PVC's short coupling and long
  compensatory pause make a regular rhythm look irregular.
* :class:`AfEpisodeTracker` turns the window probabilities into episodes:
  hysteresis (``on_probability`` / ``off_probability``), a window on
  unusable signal or amid frequent ectopy (:func:`judged`:
  ``min_usable_fraction``, ``max_excluded_fraction``) withholds judgement
  (neither AF nor not-AF), AF lasting
  ``min_duration_s`` is an ``atrial_fibrillation`` episode (warning), a
  shorter irregular run of at least ``burst_min_windows`` windows is an
  ``af_burst`` finding (info: kept and sent, never an alarm), AF resuming
  within ``merge_gap_s`` continues the episode. Onset is the centre of the
  first positive window (its RR intervals are about half AF), offset the
  centre of the last one. Pure logic on numbers: the training script runs the
  very same tracker on cross-validated probabilities.
* :class:`AfProcessor` is the pipeline step: beats in, model, tracker,
  :class:`~edge.types.Episode` out, each carrying its evidence (the RR
  intervals and beat labels it was decided on, the signal quality, the model
  and rule versions).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from edge.config import AfConfig
from edge.errors import ModelError
from edge.inference import ModelHandle
from edge.inference import features as F
from edge.pipeline import Item, Output, StreamContext
from edge.types import Beat, Episode, Gap, Priority

log = logging.getLogger(__name__)

AF_EPISODE = "atrial_fibrillation"
AF_BURST = "af_burst"
#: Version of the episode rules below (recorded on every episode beside the model's).
RULES_VERSION = "2.0.0"


# -- beats -> RR windows ---------------------------------------------------------------------

@dataclass(frozen=True)
class RrWindow:
    """One scored window: its RR intervals (s), the beats ending them, its sample span."""

    rr: np.ndarray
    beat_end: np.ndarray  # sample index of the beat ending each RR interval
    start: int
    end: int
    labels: dict[str, int]  # beat labels of the window's beats (evidence)
    excluded: int  # RR intervals left out (next to ectopic beats) inside the span

    @property
    def centre(self) -> int:
        return (self.start + self.end) // 2

    @property
    def excluded_fraction(self) -> float:
        """Share of the RR intervals in the window's span that were left out."""
        n = len(self.rr) + self.excluded
        return self.excluded / n if n else 0.0


class RrWindower:
    """Labelled beats in, a window of 32 clean RR intervals out every ``hop`` beats."""

    def __init__(self, fs: float, hop: int, exclude_labels: Iterable[str] = ("V",)) -> None:
        self.fs = fs
        self.hop = max(1, int(hop))
        self.exclude = frozenset(exclude_labels)
        n = F.AF_WINDOW_RR
        self._rr: deque[float] = deque(maxlen=n)
        self._end: deque[int] = deque(maxlen=n)
        self._lab: deque[str] = deque(maxlen=n)
        self._excl: deque[int] = deque(maxlen=4 * n)  # beat index ending each excluded RR
        self._prev: tuple[int, str] | None = None
        self._since = 0
        self.rr_excluded = 0

    def reset(self) -> None:
        self._rr.clear()
        self._end.clear()
        self._lab.clear()
        self._excl.clear()
        self._prev = None
        self._since = 0

    @property
    def last_index(self) -> int | None:
        return None if self._prev is None else self._prev[0]

    def add(self, index: int, label: str | None) -> RrWindow | None:
        lab = label or "Q"
        prev = self._prev
        if prev is not None and index <= prev[0]:
            return None  # a beat seen already (defensive: never count one twice)
        self._prev = (index, lab)
        if prev is None:
            return None
        if prev[1] in self.exclude or lab in self.exclude:
            self.rr_excluded += 1
            self._excl.append(index)
            return None
        self._rr.append((index - prev[0]) / self.fs)
        self._end.append(index)
        self._lab.append(lab)
        self._since += 1
        if len(self._rr) < F.AF_WINDOW_RR or self._since < self.hop:
            return None
        self._since = 0
        rr = np.asarray(self._rr, dtype=np.float64)
        ends = np.asarray(self._end, dtype=np.int64)
        start = int(ends[0] - round(rr[0] * self.fs))
        excluded = sum(1 for i in self._excl if start < i <= ends[-1])
        return RrWindow(rr, ends, start, int(ends[-1]), dict(Counter(self._lab)), excluded)


def rr_windows_from_beats(beat_index: np.ndarray, labels: Iterable[str | None], fs: float,
                          hop: int, exclude_labels: Iterable[str]) -> list[RrWindow]:
    """Every window :class:`RrWindower` makes from a whole beat sequence (offline use)."""
    w = RrWindower(fs, hop, exclude_labels)
    out = []
    for i, lab in zip(beat_index, labels, strict=True):
        win = w.add(int(i), None if lab is None else str(lab))
        if win is not None:
            out.append(win)
    return out


# -- probabilities -> episodes ---------------------------------------------------------------

@dataclass
class AfRun:
    """An AF candidate, episode or burst as the tracker sees it (sample indices)."""

    onset: int
    last_positive: int
    probs: list[float] = field(default_factory=list)
    windows: int = 0
    withheld: int = 0
    confirmed: bool = False
    reopened: int = 0
    last_window: RrWindow | None = None
    quality: list[float] = field(default_factory=list)
    episode_id: str | None = None  # the id of the Episode reporting this run (revisions)

    @property
    def span(self) -> int:
        return self.last_positive - self.onset


@dataclass(frozen=True)
class AfEvent:
    """What the tracker reports: ``kind`` confirmed / ongoing / ended / burst."""

    kind: str  # "confirmed" | "reopened" | "ended" | "burst"
    run: AfRun
    offset: int
    ended_by: str = ""


class AfEpisodeTracker:
    """Window probabilities in, AF episode and burst events out (pure logic, no I/O)."""

    def __init__(self, config: AfConfig, fs: float) -> None:
        self.config = config
        self.fs = fs
        self._run: AfRun | None = None
        self._recent: AfRun | None = None  # last ended episode, may be reopened
        self._first = True
        self._last: RrWindow | None = None  # the latest window seen

    def reset(self) -> list[AfEvent]:
        """Signal gap: end what is open; the next window starts afresh."""
        out = self.end("signal gap", at_stream_end=True)
        self._recent = None
        self._first = True
        self._last = None
        return out

    def update(self, p: float | None, win: RrWindow, quality: float | None = None,
               ) -> list[AfEvent]:
        """One window's p(AF); ``None`` when the signal was unusable (judgement withheld)."""
        c = self.config
        fs = self.fs
        onset = win.start if self._first else win.centre
        self._first = False
        self._last = win
        run = self._run
        if p is None:
            # no judgement: an open run is neither extended nor ended (its offset stays
            # at the last AF window; AF found again after the noise continues it)
            if run is not None:
                run.withheld += 1
            return []
        if run is None:
            if p < c.on_probability:
                return []
            recent = self._recent
            if recent is not None and (onset - recent.last_positive) / fs <= c.merge_gap_s:
                self._run, self._recent = recent, None  # AF resumed: same episode
                recent.reopened += 1
                self._add(recent, p, win, quality)
                return [AfEvent("reopened", recent, recent.last_positive)]
            self._run = AfRun(onset, win.centre)
            self._add(self._run, p, win, quality)
            return []
        if p < c.off_probability:
            return self.end("rhythm changed")
        self._add(run, p, win, quality)
        if not run.confirmed and run.span / fs >= c.min_duration_s:
            run.confirmed = True
            return [AfEvent("confirmed", run, run.last_positive)]
        return []

    def end(self, ended_by: str, at_stream_end: bool = False) -> list[AfEvent]:
        """End the open run. ``at_stream_end`` (gap, end of stream): when the last
        window was still AF, AF lasted to that window's end, not to its centre."""
        run = self._run
        self._run = None
        if run is None:
            return []
        offset = run.last_positive
        if at_stream_end and run.last_window is not None and run.last_window is self._last:
            offset = run.last_window.end
        offset = max(offset, run.onset)
        if run.confirmed:
            self._recent = run
            return [AfEvent("ended", run, offset, ended_by)]
        if run.windows >= self.config.burst_min_windows:
            return [AfEvent("burst", run, offset, ended_by)]
        return []

    @staticmethod
    def _add(run: AfRun, p: float, win: RrWindow, quality: float | None) -> None:
        run.probs.append(p)
        run.windows += 1
        run.last_positive = win.centre
        run.last_window = win
        if quality is not None:
            run.quality.append(quality)


def episodes_offline(probs: Iterable[float | None], windows: list[RrWindow], config: AfConfig,
                     fs: float) -> list[tuple[str, int, int]]:
    """``(kind, onset, offset)`` of the AF episodes and bursts of a whole record (offline).

    Runs :class:`AfEpisodeTracker` exactly as :class:`AfProcessor` does; kind is
    :data:`AF_EPISODE` or :data:`AF_BURST`. Used by the training script's
    cross-validation on held-out patients.
    """
    tr = AfEpisodeTracker(config, fs)
    spans: dict[int, tuple[str, int, int]] = {}
    events: list[AfEvent] = []
    for p, w in zip(probs, windows, strict=True):
        events += tr.update(p, w)
    events += tr.end("end of record", at_stream_end=True)
    for ev in events:
        if ev.kind in ("ended", "burst"):
            kind = AF_EPISODE if ev.kind == "ended" else AF_BURST
            spans[id(ev.run)] = (kind, ev.run.onset, ev.offset)
    return sorted(spans.values(), key=lambda s: s[1])


def usable_fraction(quality_at: Callable[[int], float | None], start: int, end: int,
                    fs: float, min_sqi: float) -> float | None:
    """Share of one-second probes in ``[start, end]`` whose SQI reaches ``min_sqi``
    (None when no probe has a quality value yet)."""
    probes = [quality_at(i) for i in range(start, max(start, end) + 1, max(1, int(fs)))]
    known = [q for q in probes if q is not None]
    return None if not known else sum(q >= min_sqi for q in known) / len(known)


def judged(win: RrWindow, usable: float | None, config: AfConfig) -> bool:
    """May this window be judged? Not on unusable signal (``usable`` below
    ``min_usable_fraction``) nor amid frequent ectopy (``max_excluded_fraction``)."""
    if usable is not None and usable < config.min_usable_fraction:
        return False
    return win.excluded_fraction <= config.max_excluded_fraction


# -- the pipeline step -----------------------------------------------------------------------

class AfProcessor:
    """AF episodes from the AF model's RR-window probabilities (Beat + Gap in, Episodes out).

    ``quality_at``: ``sample index -> SQI or None`` (the ECG quality timeline's
    :meth:`~edge.detect.quality.QualityTimeline.quality_at`); a window whose
    one-second probes reach ``AfConfig.min_sqi`` less than
    ``AfConfig.min_usable_fraction`` of the time is not judged.
    """

    def __init__(self, ctx: StreamContext, handle: ModelHandle, config: AfConfig,
                 quality_at: Callable[[int], float | None] | None = None) -> None:
        if handle.model.spec.features != F.AF_FEATURES:
            raise ModelError(f"model {handle.model.name} takes {handle.model.spec.features} "
                             f"features, the AF step needs {F.AF_FEATURES}")
        self.ctx = ctx
        self.handle = handle
        self.config = config
        self.quality_at = quality_at
        self.name: str = handle.model.name
        self.version: str = f"{handle.model.version}+rules{RULES_VERSION}"
        self.windower = RrWindower(ctx.fs, config.hop_beats, config.exclude_rr_labels)
        self.tracker = AfEpisodeTracker(config, ctx.fs)
        self.windows_scored = 0
        self.windows_withheld = 0

    @property
    def rr_excluded(self) -> int:
        return self.windower.rr_excluded

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Beat | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            out = self._emit(self.tracker.reset())
            self.windower.reset()
            return out
        assert isinstance(item, Beat)
        win = self.windower.add(item.index, item.label)
        if win is None:
            return []
        quality = (usable_fraction(self.quality_at, win.start, win.end, self.ctx.fs,
                                   self.config.min_sqi)
                   if self.quality_at is not None else None)
        if not judged(win, quality, self.config):
            self.windows_withheld += 1
            return self._emit(self.tracker.update(None, win, quality))
        p = float(self.handle.model.run(F.af_features(win.rr))[0, 1])
        self.windows_scored += 1
        return self._emit(self.tracker.update(p, win, quality))

    def flush(self) -> Iterable[Output]:
        return self._emit(self.tracker.end("end of stream", at_stream_end=True))

    def _emit(self, events: list[AfEvent]) -> list[Output]:
        out: list[Output] = []
        for ev in events:
            kind = AF_BURST if ev.kind == "burst" else AF_EPISODE
            ep = self._episode(ev.run, ev.offset, kind)
            status = "ended" if ev.kind in ("ended", "burst") else "ongoing"
            details = {**ep.details}
            if ev.ended_by:
                details["ended_by"] = ev.ended_by
            ep = replace(ep, status=status, details=details)
            # every revision of a run (confirmed, reopened, ended) keeps one episode id
            if ev.run.episode_id is not None:
                ep = replace(ep, id=ev.run.episode_id)
            else:
                ev.run.episode_id = ep.id
            out.append(ep)
        return out

    def _episode(self, run: AfRun, offset: int, kind: str) -> Episode:
        m = self.handle.model
        fs = self.ctx.fs
        win = run.last_window
        evidence: dict[str, object] = {}
        if win is not None:
            evidence = {"rr_ms": [int(round(v * 1000)) for v in win.rr],
                        "rr_end_index": [int(i) for i in win.beat_end],
                        "beat_labels": win.labels, "rr_excluded_ectopic": win.excluded}
        return Episode(
            kind=kind, key=self.ctx.key, onset=self.ctx.wall(run.onset),
            offset=self.ctx.wall(offset), onset_index=run.onset, offset_index=offset,
            priority=Priority.WARNING if kind == AF_EPISODE else Priority.INFO,
            detector=m.name, detector_version=self.version,
            confidence=round(float(np.mean(run.probs)), 3),
            details={"model": m.name, "model_version": m.version, "rules": RULES_VERSION,
                     "format": m.format, "precision": m.precision,
                     "backend": m.backend_name, "windows": run.windows,
                     "windows_withheld": run.withheld,
                     "p_max": round(float(np.max(run.probs)), 3),
                     "duration_s": round((offset - run.onset) / fs, 1),
                     "min_duration_s": self.config.min_duration_s,
                     "usable_signal_fraction":
                         round(float(np.mean(run.quality)), 2) if run.quality else None,
                     "reopened": run.reopened, "evidence": evidence})
