"""Heart rate from beats, and the brady / tachy / pause / asystole rules.

Thresholds, minimum durations and hysteresis come from
:class:`~edge.config.RateRulesConfig` and :class:`~edge.config.HeartRateConfig`,
each with its clinical source. Rules work on sample indices, never on the
wall clock, so replay is deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from edge.config import EdgeConfig, HeartRateConfig, RateRulesConfig
from edge.detect.quality import QualityTimeline
from edge.dsp.ring import SampleRing
from edge.pipeline import Item, Output, StreamContext
from edge.types import (
    VITAL_UNITS,
    Beat,
    Episode,
    Gap,
    Priority,
    VitalKind,
    VitalSample,
    VitalSummary,
)
from edge.windowing import Window


class RrTracker:
    """Recent RR intervals of one stream; heart rate as their median.

    RR intervals shorter than ``min_rr_s`` are implausible (double
    detections) and left out; a gap resets the history because an RR across a
    gap would be invented.
    """

    def __init__(self, config: HeartRateConfig) -> None:
        self.config = config
        self._rr: deque[float] = deque(maxlen=config.average_beats)
        self.last_beat: Beat | None = None

    def reset(self) -> None:
        self._rr.clear()
        self.last_beat = None

    def add(self, beat: Beat) -> float | None:
        """Add a beat; return the RR interval it closes (seconds), if any."""
        rr = None
        if self.last_beat is not None:
            rr = (beat.index - self.last_beat.index) / beat.fs
            if rr >= self.config.min_rr_s:
                self._rr.append(rr)
        self.last_beat = beat
        return rr

    @property
    def ready(self) -> bool:
        return len(self._rr) == self._rr.maxlen

    def rate_bpm(self) -> float | None:
        if not self._rr:
            return None
        return 60.0 / float(np.median(self._rr))


class HeartRateProcessor:
    """Emits the heart rate every ``report_every_s`` seconds of signal, from detected beats."""

    name = "heart_rate"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: HeartRateConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._rr = RrTracker(config)
        self._next_report: int | None = None

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Beat | Gap)

    def reconfigure(self, config: EdgeConfig) -> None:
        self.config = config.heart_rate

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            self._rr.reset()
            self._next_report = None
            return []
        assert isinstance(item, Beat)
        self._rr.add(item)
        every = int(self.config.report_every_s * item.fs)
        if self._next_report is None:
            self._next_report = item.index + every
            return []
        if item.index < self._next_report or not self._rr.ready:
            return []
        self._next_report = item.index + every
        bpm = self._rr.rate_bpm()
        assert bpm is not None
        return [VitalSample(self.ctx.key, VitalKind.HEART_RATE, round(bpm, 1),
                            VITAL_UNITS[VitalKind.HEART_RATE], item.device_time,
                            self.ctx.wall(item.index), quality=item.confidence,
                            source=self.name)]

    def flush(self) -> Iterable[Output]:
        return []


@dataclass
class _RateEpisode:
    kind: str
    start_index: int
    rates: list[float] = field(default_factory=list)
    beyond: int = 0  # beats whose rate was past the alarm limit
    confirmed: Episode | None = None  # set once min_duration is reached
    last_end_index: int | None = None


class RateRules:
    """Tachycardia, bradycardia, pause and asystole episodes for one ECG stream.

    * tachy / brady: the median-of-N heart rate stays past the alarm limit for
      ``min_duration_s``; the episode is raised then (``ongoing``, onset back
      dated to when the condition began) and ends when the rate crosses the
      clear limit (hysteresis). A new episode of the same kind within
      ``realert_s`` of the last one reopens it instead of alarming again.
    * pause: an RR interval of ``pause_s`` or more (warning), reported when
      the beat that ends it arrives.
    * asystole: no beat for ``asystole_s`` (urgent); raised while it lasts,
      driven by signal windows, not by the next beat, so it is not late.

    Sources: see :class:`~edge.config.RateRulesConfig` field metadata.
    """

    name = "rate_rules"
    version = "1.1.0"  # 1.1.0: no-QRS verdicts need an adequate signal

    #: Detector decision latency allowance: a beat may be confirmed this late.
    detector_latency_s = 1.5

    def __init__(self, ctx: StreamContext, config: RateRulesConfig,
                 hr_config: HeartRateConfig, quality: QualityTimeline | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self.quality = quality  # recorded with episodes when the ECG quality step runs
        self._rr = RrTracker(hr_config)
        self._ring = SampleRing(int((config.asystole_s + 6.0) * ctx.fs))
        self._suppressed_since: int | None = None  # silent interval judged inadequate
        self._active: dict[str, _RateEpisode] = {}
        self._candidates: dict[str, _RateEpisode] = {}
        self._recent: dict[str, _RateEpisode] = {}  # ended, may be reopened
        self._asystole: Episode | None = None

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Beat | Gap | Window)

    def reconfigure(self, config: EdgeConfig) -> None:
        """New thresholds apply from the next beat; an open episode keeps its identity."""
        self.config = config.rate_rules

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Window):
            self._ring.push(item.start_index, item.data[:, 0])
            return self._tick(item.end_index)
        if isinstance(item, Gap):
            return self._on_gap(item)
        assert isinstance(item, Beat)
        return self._on_beat(item)

    def flush(self) -> Iterable[Output]:
        out: list[Output] = []
        end = self._rr.last_beat.index if self._rr.last_beat else 0
        for kind in list(self._active):
            out += self._end(kind, end, ended_by="end of stream")
        return out

    # -- helpers ---------------------------------------------------------------
    def _episode(self, kind: str, onset: int, offset: int, priority: Priority,
                 **details: object) -> Episode:
        return Episode(kind=kind, key=self.ctx.key, onset=self.ctx.wall(onset),
                       offset=self.ctx.wall(offset), onset_index=onset, offset_index=offset,
                       priority=priority, detector=self.name, detector_version=self.version,
                       details=dict(details))

    def _on_gap(self, gap: Gap) -> list[Output]:
        out: list[Output] = []
        for kind in list(self._active):
            out += self._end(kind, gap.start_index, ended_by="signal gap")
        self._candidates.clear()
        self._ring.reset()
        self._suppressed_since = None
        if self._asystole is not None:
            out.append(replace(self._asystole, status="ended",
                               details={**self._asystole.details, "ended_by": "signal gap"}))
            self._asystole = None
        self._rr.reset()
        return out

    def _tick(self, end_index: int) -> list[Output]:
        last = self._rr.last_beat
        if last is None or self._asystole is not None or self._suppressed_since is not None:
            return []
        now = end_index - int(self.detector_latency_s * self.ctx.fs)
        silent_s = (now - last.index) / self.ctx.fs
        if silent_s < self.config.asystole_s:
            return []
        why = self._inadequate(last.index, now)
        if why is not None:
            self._suppressed_since = last.index
            return [self._inadequate_event(last.index, now, "asystole", why)]
        self._asystole = self._episode("asystole", last.index, now, Priority.URGENT,
                                       threshold_s=self.config.asystole_s,
                                       **self._quality_details(last.index, now))
        self._asystole = replace(self._asystole, status="ongoing")
        return [self._asystole]

    def _inadequate(self, start: int, end: int) -> dict[str, float] | None:
        """Why the ECG between two samples cannot support a no-QRS verdict, if it cannot."""
        seg = self._ring.segment(start, end)
        if seg is None or seg.size < 2:
            return None
        seg = seg[np.isfinite(seg)]
        if seg.size < 2:
            return {"missing_fraction": 1.0}
        k = max(1, int(0.5 * self.ctx.fs))
        baseline = np.convolve(seg, np.ones(k) / k, mode="valid") if seg.size > k else seg
        excursion = float(np.ptp(baseline))
        if excursion > self.config.inadequate_baseline_mv:
            return {"baseline_excursion_mv": round(excursion, 2)}
        lo, hi = float(seg.min()), float(seg.max())
        if hi - lo > 1.5:
            eps = 1e-3 * (hi - lo)
            clipped = float(np.mean((seg >= hi - eps) | (seg <= lo + eps)))
            if clipped > self.config.inadequate_clipped_fraction:
                return {"clipped_fraction": round(clipped, 3)}
        return None

    def _inadequate_event(self, start: int, end: int, suppressed: str,
                          why: dict[str, float]) -> Episode:
        return self._episode("ecg_signal_inadequate", start, end, Priority.INFO,
                             suppressed=suppressed, **why)

    def _quality_details(self, start: int, end: int) -> dict[str, float]:
        if self.quality is None:
            return {}
        q = [v for v in (self.quality.quality_at(i) for i in (start, (start + end) // 2, end))
             if v is not None]
        return {"signal_quality": round(min(q), 3)} if q else {}

    def _on_beat(self, beat: Beat) -> list[Output]:
        out: list[Output] = []
        prev = self._rr.last_beat
        rr = self._rr.add(beat)
        if prev is not None and rr is not None:
            if self._suppressed_since is not None:
                self._suppressed_since = None  # the silent stretch was noise, not asystole
            elif self._asystole is not None:
                ep = self._asystole
                out.append(replace(ep, offset=self.ctx.wall(beat.index), offset_index=beat.index,
                                   status="ended",
                                   details={**ep.details, "longest_rr_s": round(rr, 3)}))
                self._asystole = None
            elif rr >= self.config.pause_s:
                kind, prio, limit = (("asystole", Priority.URGENT, self.config.asystole_s)
                                     if rr >= self.config.asystole_s else
                                     ("pause", Priority.WARNING, self.config.pause_s))
                why = self._inadequate(prev.index, beat.index)
                if why is not None:
                    out.append(self._inadequate_event(prev.index, beat.index, kind, why))
                else:
                    out.append(self._episode(kind, prev.index, beat.index, prio,
                                             longest_rr_s=round(rr, 3), threshold_s=limit,
                                             **self._quality_details(prev.index, beat.index)))
        bpm = self._rr.rate_bpm()
        if bpm is None or not self._rr.ready:
            return out
        out += self._rate_rule("tachycardia", bpm > self.config.tachy_bpm,
                               bpm < self.config.tachy_clear_bpm, bpm, beat)
        out += self._rate_rule("bradycardia", bpm < self.config.brady_bpm,
                               bpm > self.config.brady_clear_bpm, bpm, beat)
        return out

    def _rate_rule(self, kind: str, beyond: bool, cleared: bool, bpm: float,
                   beat: Beat) -> list[Output]:
        active = self._active.get(kind)
        if active is not None:
            if cleared:
                return self._end(kind, beat.index, ended_by="rate recovered")
            active.rates.append(bpm)
            active.beyond += int(beyond)
            active.last_end_index = beat.index
            return []
        cand = self._candidates.get(kind)
        if not beyond:
            self._candidates.pop(kind, None)
            return []
        if cand is None:
            cand = self._candidates[kind] = _RateEpisode(kind, beat.index)
        cand.rates.append(bpm)
        cand.beyond += 1
        if (beat.index - cand.start_index) / beat.fs < self.config.min_duration_s:
            return []
        del self._candidates[kind]
        recent = self._recent.get(kind)
        if (recent is not None and recent.confirmed is not None
                and recent.last_end_index is not None
                and (cand.start_index - recent.last_end_index) / beat.fs <= self.config.realert_s):
            recent.rates += cand.rates
            recent.beyond += cand.beyond
            self._active[kind] = recent
            ep = recent.confirmed
            recent.confirmed = replace(ep, status="ongoing",
                                       details={**ep.details,
                                                "reopened": ep.details.get("reopened", 0) + 1})
            return [recent.confirmed]
        self._active[kind] = cand
        limit = self.config.tachy_bpm if kind == "tachycardia" else self.config.brady_bpm
        ep = self._episode(kind, cand.start_index, beat.index, Priority.WARNING,
                           limit_bpm=limit)
        cand.confirmed = replace(ep, status="ongoing", summary=self._summary(cand))
        cand.last_end_index = beat.index
        return [cand.confirmed]

    def _summary(self, ep: _RateEpisode) -> VitalSummary:
        rates = np.asarray(ep.rates)
        return VitalSummary(VitalKind.HEART_RATE, VITAL_UNITS[VitalKind.HEART_RATE],
                            round(float(rates.min()), 1), round(float(rates.max()), 1),
                            round(float(rates.mean()), 1))

    def _end(self, kind: str, end_index: int, ended_by: str) -> list[Output]:
        ep = self._active.pop(kind)
        assert ep.confirmed is not None
        ep.last_end_index = end_index
        confidence = ep.beyond / max(1, len(ep.rates))
        final = replace(ep.confirmed, offset=self.ctx.wall(end_index), offset_index=end_index,
                        status="ended", summary=self._summary(ep),
                        confidence=round(confidence, 3),
                        details={**ep.confirmed.details, "ended_by": ended_by})
        ep.confirmed = final
        self._recent[kind] = ep
        return [final]
