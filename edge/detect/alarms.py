"""Alarm-fatigue control shared by rules: one state machine per condition per stream.

A condition (desaturation, fever, a deviation from baseline...) goes through

    idle --beyond--> candidate --(min duration and min readings)--> ongoing
         <--not beyond--            ongoing --cleared (hysteresis)--> ended
    ended --beyond again within realert_s--> the same episode reopened (same id)

* **Minimum duration** and **minimum readings**: a condition must persist
  before it alarms (IEC 60601-1-8:2006+A1:2012, 6.1 alarm condition delay;
  rules cite their own values).
* **Hysteresis**: the rule says when a value is ``beyond`` the alarm limit and
  when it is ``cleared`` (past a separate clear limit); in between the state
  does not change.
* **Re-alert merge**: a new occurrence within ``realert_s`` after the end of the
  last one reopens it under the same id (``details['reopened']`` counts them)
  instead of raising a new alarm.
* **Quality**: readings below ``min_quality`` are neither evidence for nor
  against the condition; they are counted (``low_quality_samples``). An
  episode whose mean reading quality is below ``downgrade_quality`` is raised
  one priority lower and says so (``quality_downgraded``): low quality
  downgrades alarms rather than raising false ones (Li, Mark & Clifford 2008,
  Physiol Meas 29:15-32; Behar et al. 2013, IEEE TBME 60(6):1660-1666).
* **Priority**: the rule's policy priority, raised while ongoing if the rule
  reports a more severe level (the same id is re-sent with the new priority).

The machine works on an explicit time axis (seconds of device time) with the
sample index and UTC time of each observation supplied by the caller, so the
same object serves vital-sign rules and beat-driven rules (``rate.py`` could
adopt it: ``Observation(t=beat.index / fs, index=beat.index,
wall=ctx.wall(beat.index), value=bpm)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edge.types import Episode, Priority, StreamKey, VitalKind, VitalSummary

_LOWER = {Priority.URGENT: Priority.WARNING, Priority.WARNING: Priority.INFO,
          Priority.INFO: Priority.INFO}
_RANK = {Priority.INFO: 0, Priority.WARNING: 1, Priority.URGENT: 2}


def downgrade(priority: Priority) -> Priority:
    """One priority level lower (info stays info)."""
    return _LOWER[priority]


def more_severe(a: Priority, b: Priority) -> Priority:
    return a if _RANK[a] >= _RANK[b] else b


@dataclass(frozen=True)
class AlarmPolicy:
    """How one condition alarms; every number comes from a config section."""

    kind: str
    priority: Priority
    min_duration_s: float
    realert_s: float
    min_readings: int = 1
    min_quality: float = 0.0
    downgrade_quality: float = 0.0


@dataclass(frozen=True)
class Observation:
    """One reading on a stream's time axis: device seconds, sample index, UTC time."""

    t: float
    index: int
    wall: float
    value: float
    quality: float = 1.0


@dataclass
class _Run:
    start: Observation
    values: list[float] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    low_quality: int = 0
    last: Observation | None = None
    severity: Priority | None = None


class AlarmState:
    """The state machine of one condition on one stream (see the module docstring)."""

    def __init__(self, policy: AlarmPolicy, key: StreamKey, detector: str, version: str,
                 vital: VitalKind | None = None, unit: str = "") -> None:
        self.policy = policy
        self.key = key
        self.detector = detector
        self.version = version
        self.vital = vital
        self.unit = unit
        self._candidate: _Run | None = None
        self._active: _Run | None = None
        self._episode: Episode | None = None  # the confirmed episode (ongoing or ended)
        self._ended_at: float | None = None  # t of the end of the last episode

    @property
    def active(self) -> bool:
        return self._active is not None

    @property
    def episode(self) -> Episode | None:
        return self._episode

    def update(self, obs: Observation, beyond: bool, cleared: bool,
               severity: Priority | None = None,
               details: dict[str, Any] | None = None) -> list[Episode]:
        """Feed one reading; ``beyond``/``cleared`` are the rule's verdicts on it."""
        p = self.policy
        run = self._active or self._candidate
        if obs.quality < p.min_quality:
            if run is not None:
                run.low_quality += 1
            return []
        if self._active is not None:
            if cleared:
                return self._end(obs, "value recovered")
            self._add(self._active, obs, severity)
            return self._maybe_escalate(obs, details)
        if not beyond:
            self._candidate = None
            return []
        if self._candidate is None:
            self._candidate = _Run(obs)
        cand = self._candidate
        self._add(cand, obs, severity)
        if obs.t - cand.start.t < p.min_duration_s or len(cand.values) < p.min_readings:
            return []
        self._candidate = None
        return self._confirm(cand, obs, details or {})

    def end(self, obs: Observation, ended_by: str) -> list[Episode]:
        """End an ongoing episode (a gap, the end of the stream); drop a candidate."""
        self._candidate = None
        if self._active is None:
            return []
        return self._end(obs, ended_by)

    # -- internals ---------------------------------------------------------------------
    @staticmethod
    def _add(run: _Run, obs: Observation, severity: Priority | None) -> None:
        run.values.append(obs.value)
        run.qualities.append(obs.quality)
        run.last = obs
        if severity is not None:
            run.severity = severity if run.severity is None else more_severe(run.severity,
                                                                              severity)

    def _priority(self, run: _Run) -> tuple[Priority, bool]:
        prio = self.policy.priority
        if run.severity is not None:
            prio = more_severe(prio, run.severity)
        low = float(np.mean(run.qualities)) < self.policy.downgrade_quality
        return (downgrade(prio) if low else prio), low

    def _summary(self, run: _Run) -> VitalSummary | None:
        if self.vital is None or not run.values:
            return None
        v = np.asarray(run.values)
        return VitalSummary(self.vital, self.unit, round(float(v.min()), 2),
                            round(float(v.max()), 2), round(float(v.mean()), 2))

    def _quality_details(self, run: _Run) -> dict[str, Any]:
        return {"mean_quality": round(float(np.mean(run.qualities)), 3),
                "low_quality_samples": run.low_quality}

    def _confirm(self, cand: _Run, obs: Observation, details: dict[str, Any]) -> list[Episode]:
        p = self.policy
        prio, low = self._priority(cand)
        recent = self._episode
        if (recent is not None and self._ended_at is not None
                and cand.start.t - self._ended_at <= p.realert_s):
            assert self._active is None
            self._active = cand  # the episode keeps its first onset
            self._episode = replace(
                recent, status="ongoing", offset=obs.wall, offset_index=obs.index,
                priority=more_severe(recent.priority, prio), summary=self._summary(cand),
                details={**recent.details, **details, **self._quality_details(cand),
                         "reopened": recent.details.get("reopened", 0) + 1})
            return [self._episode]
        self._active = cand
        self._episode = Episode(
            kind=p.kind, key=self.key, onset=cand.start.wall, offset=obs.wall,
            onset_index=cand.start.index, offset_index=obs.index, priority=prio,
            detector=self.detector, detector_version=self.version, status="ongoing",
            summary=self._summary(cand),
            details={**details, **self._quality_details(cand),
                     **({"quality_downgraded": True} if low else {})})
        return [self._episode]

    def _maybe_escalate(self, obs: Observation, details: dict[str, Any] | None) -> list[Episode]:
        assert self._active is not None and self._episode is not None
        prio, _ = self._priority(self._active)
        if _RANK[prio] <= _RANK[self._episode.priority]:
            return []
        self._episode = replace(self._episode, priority=prio, offset=obs.wall,
                                offset_index=obs.index, summary=self._summary(self._active),
                                details={**self._episode.details, **(details or {}),
                                         "escalated_to": prio.value})
        return [self._episode]

    def _end(self, obs: Observation, ended_by: str) -> list[Episode]:
        run = self._active
        assert run is not None and self._episode is not None
        self._active = None
        self._ended_at = obs.t
        final = replace(self._episode, status="ended", offset=obs.wall, offset_index=obs.index,
                        summary=self._summary(run),
                        details={**self._episode.details, **self._quality_details(run),
                                 "ended_by": ended_by})
        self._episode = final
        return [final]

