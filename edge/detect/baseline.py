"""Personal baselines of vital signs, and deviations from them.

Each patient's own normal is learned from their data, as in the
patient-personalised novelty detection of the Oxford group (Clifton L, Clifton
DA, Pimentel MAF, Watkinson PJ, Tarassenko L, *Predictive monitoring of mobile
patients by combining clinical observations with data from wearable sensors*,
IEEE JBHI 2014;18(3):722-730): a baseline is learned over an initial period
(default 24 h) and then keeps rolling.

Statistics are robust: the median, and the median absolute deviation scaled
by 1.4826 to estimate a standard deviation under normality (Leys C et al.,
*Detecting outliers: do not use standard deviation around the mean, use
absolute deviation around the median*, J Exp Soc Psychol 2013;49:764-766).
A deviation is a value outside ``median +/- k * MAD`` (k = 3 info, 5 warning
by default) for ``min_duration_s``.

Memory is bounded: readings are reduced to one median per ``bucket_s``
(1 minute), so a day is 1440 numbers per vital.

Readings that deviate do not train the baseline (it must not learn the very
episode it flags). No deviation is ever flagged before the baseline is
learned; episodes carry
the baseline they were judged against (median, MAD, since when, how many
minutes) in their details.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edge.config import BaselineConfig
from edge.detect.alarms import AlarmPolicy, AlarmState, Observation
from edge.pipeline import Item, Output, StreamContext
from edge.types import VITAL_UNITS, Gap, Priority, VitalKind, VitalSample

MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD -> SD of a normal distribution (Leys et al. 2013)

#: Vitals that get a baseline, and the name of their deviation episode.
TRACKED = {
    VitalKind.HEART_RATE: "hr_deviation",
    VitalKind.PULSE_RATE: "hr_deviation",
    VitalKind.SPO2: "spo2_deviation",
    VitalKind.RESP_RATE: "resp_deviation",
    VitalKind.TEMPERATURE: "temperature_deviation",
}


@dataclass(frozen=True)
class BaselineStats:
    median: float
    mad: float  # scaled (x 1.4826) and floored
    n_buckets: int
    since: float  # device seconds of the first bucket
    learned: bool

    def as_details(self) -> dict[str, float | int | bool]:
        return {"baseline_median": round(self.median, 2), "baseline_mad": round(self.mad, 3),
                "baseline_minutes": self.n_buckets, "baseline_learned": self.learned}


class _Series:
    def __init__(self) -> None:
        self.buckets: deque[tuple[float, float]] = deque()  # (bucket start t, median)
        self.cur_start: float | None = None
        self.cur: list[float] = []
        self.first_t: float | None = None
        self.cache: tuple[float, float] | None = None  # (median, scaled MAD) of the buckets


class BaselineTracker:
    """Robust rolling baselines of one patient's vitals (shared by the rules that use them)."""

    def __init__(self, config: BaselineConfig) -> None:
        self.config = config
        self._series: dict[VitalKind, _Series] = {}

    @staticmethod
    def _canonical(kind: VitalKind) -> VitalKind:
        return VitalKind.HEART_RATE if kind is VitalKind.PULSE_RATE else kind

    def add(self, kind: VitalKind, t: float, value: float, quality: float = 1.0) -> None:
        if quality < self.config.min_quality or not np.isfinite(value):
            return
        s = self._series.setdefault(self._canonical(kind), _Series())
        if s.first_t is None:
            s.first_t = t
        b = self.config.bucket_s
        start = float(np.floor(t / b) * b)
        if s.cur_start is not None and start != s.cur_start:
            s.buckets.append((s.cur_start, float(np.median(s.cur))))
            s.cur = []
            s.cache = None
            horizon = start - self.config.window_s
            while s.buckets and s.buckets[0][0] < horizon:
                s.buckets.popleft()
        s.cur_start = start
        s.cur.append(value)

    def _floor(self, kind: VitalKind) -> float:
        c = self.config
        return {VitalKind.HEART_RATE: c.mad_floor_hr, VitalKind.SPO2: c.mad_floor_spo2,
                VitalKind.RESP_RATE: c.mad_floor_resp,
                VitalKind.TEMPERATURE: c.mad_floor_temp}.get(kind, 0.0)

    def stats(self, kind: VitalKind, t: float, require_learned: bool = True,
              ) -> BaselineStats | None:
        """The baseline of ``kind`` at device time ``t``; None if not learned (by default)."""
        kind = self._canonical(kind)
        s = self._series.get(kind)
        if s is None or not s.buckets or s.first_t is None:
            return None
        learned = (t - s.first_t >= self.config.learn_s
                   and len(s.buckets) >= self.config.min_samples)
        if require_learned and not learned:
            return None
        if s.cache is None:
            v = np.fromiter((m for _, m in s.buckets), dtype=np.float64)
            med = float(np.median(v))
            s.cache = (med, MAD_TO_SD * float(np.median(np.abs(v - med))))
        med, mad = s.cache
        return BaselineStats(med, max(mad, self._floor(kind)), len(s.buckets), s.buckets[0][0],
                             learned)


class BaselineProcessor:
    """Feeds a :class:`BaselineTracker` and raises ``*_deviation`` episodes from it.

    ``hr_deviation`` etc.: the vital stays beyond ``median +/- k_mad_info * MAD``
    for ``min_duration_s`` (info; warning when beyond ``k_mad_warning``), and
    ends when back within it. Never before the baseline is learned.
    """

    name = "baseline"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: BaselineConfig, tracker: BaselineTracker,
                 kinds: Iterable[VitalKind] = tuple(TRACKED)) -> None:
        from edge.detect.vitals import _observation  # a shared helper; avoids an import cycle

        self._obs = _observation
        self.ctx = ctx
        self.config = config
        self.tracker = tracker
        self.kinds = frozenset(kinds)
        self.states: dict[str, AlarmState] = {}
        self._last: Observation | None = None

    def _state(self, kind: VitalKind) -> AlarmState:
        name = TRACKED[kind]
        st = self.states.get(name)
        if st is None:
            c = self.config
            st = AlarmState(AlarmPolicy(name, Priority.INFO, c.min_duration_s, c.min_duration_s,
                                        1, c.min_quality, 0.0),
                            self.ctx.key, self.name, self.version, kind, VITAL_UNITS[kind])
            self.states[name] = st
        return st

    def accepts(self, item: Item) -> bool:
        return (isinstance(item, VitalSample) and item.kind in self.kinds) or isinstance(item,
                                                                                        Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            return self.flush()
        assert isinstance(item, VitalSample)
        obs = self._obs(self.ctx, item)
        self._last = obs
        base = self.tracker.stats(item.kind, obs.t)
        if base is None:
            self.tracker.add(item.kind, obs.t, item.value, item.quality)
            return []  # not learned yet: nothing is flagged before it is
        z = abs(obs.value - base.median) / base.mad
        if z < self.config.k_mad_info:
            # deviating readings do not train the baseline: it must not learn the episode
            self.tracker.add(item.kind, obs.t, item.value, item.quality)
        sev = Priority.WARNING if z >= self.config.k_mad_warning else None
        return self._state(item.kind).update(
            obs, z >= self.config.k_mad_info, z < self.config.k_mad_info, sev,
            {**base.as_details(), "k_mad": self.config.k_mad_info,
             "direction": "above" if obs.value > base.median else "below"})

    def flush(self) -> Iterable[Output]:
        if self._last is None:
            return []
        out: list[Output] = []
        for st in self.states.values():
            out += st.end(self._last, "end of stream")
        return out
