"""Ventricular runs and ectopic burden, from classified beats.

Consumes :class:`~edge.types.Beat` objects labelled by the beat model (N, S,
V; Q when unclassified) and emits:

* ``ventricular_run``: ``run_min_beats`` or more consecutive V beats at a rate
  of at least ``run_min_bpm`` (non-sustained VT, warning); a run lasting
  ``sustained_s`` is raised as ``ongoing`` and urgent (sustained VT).
* ``frequent_pvcs``: PVC burden over a sliding window at or above
  ``pvc_burden_pct`` % of beats (info), ended below ``burden_clear_pct``
  (hysteresis); the episode's details carry PVC and PAC per minute.

Sources: 2017 AHA/ACC/HRS guideline for management of patients with
ventricular arrhythmias (NSVT, sustained VT, PVC burden); see
:class:`~edge.config.EctopyConfig`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from edge.config import EctopyConfig
from edge.pipeline import Item, Output, StreamContext
from edge.types import Beat, Episode, Gap, Priority


class EctopyProcessor:
    name = "ectopy"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: EctopyConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._run: list[Beat] = []
        self._run_episode: Episode | None = None
        self._recent: deque[Beat] = deque()
        self._burden: Episode | None = None
        self._burden_peak = 0.0

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Beat | Gap)

    def reconfigure(self, config: object) -> None:
        self.config = getattr(config, "ectopy", self.config)

    def feed(self, item: Item) -> Iterable[Output]:
        out: list[Output] = []
        if isinstance(item, Gap):
            out += self._close_run(ended_by="signal gap")
            out += self._end_burden(self._recent[-1].index if self._recent else 0, "signal gap")
            self._recent.clear()
            return out
        assert isinstance(item, Beat)
        if item.label == "V":
            self._run.append(item)
            out += self._check_sustained()
        else:
            out += self._close_run(ended_by="non-ventricular beat")
        out += self._update_burden(item)
        return out

    def flush(self) -> Iterable[Output]:
        end = self._recent[-1].index if self._recent else 0
        return [*self._close_run(ended_by="end of stream"),
                *self._end_burden(end, "end of stream")]

    # -- runs --------------------------------------------------------------------------
    def _run_rate(self) -> float:
        run = self._run
        if len(run) < 2:
            return 0.0
        return 60.0 * (len(run) - 1) * self.ctx.fs / (run[-1].index - run[0].index)

    def _is_run(self) -> bool:
        return (len(self._run) >= self.config.run_min_beats
                and self._run_rate() >= self.config.run_min_bpm)

    def _run_summary(self) -> dict[str, Any]:
        return {"beats": len(self._run), "rate_bpm": round(self._run_rate(), 1),
                "evidence": self._run_evidence()}

    def _run_evidence(self) -> dict[str, Any]:
        """The beats a run was decided on: the run and the beats just before it.

        The same keys as the AF step's evidence (``rr_ms``, ``rr_end_index``,
        ``beat_labels``), so a clinician (and the FHIR mapping) reads both alike; a
        long run keeps its onset (the first ``evidence_max_beats`` beats).
        """
        first = self._run[0].index
        before = [b for b in self._recent if b.index < first][-self.config.evidence_beats_before:]
        beats = [*before, *self._run][:self.config.evidence_max_beats]
        fs = self.ctx.fs
        return {"rr_ms": [int(round(1000.0 * (b.index - a.index) / fs))
                          for a, b in zip(beats, beats[1:], strict=False)],
                "rr_end_index": [b.index for b in beats[1:]],
                "beat_labels": "".join(b.label for b in beats)}

    def _check_sustained(self) -> list[Output]:
        if self._run_episode is not None or not self._is_run():
            return []
        first, last = self._run[0].index, self._run[-1].index
        if (last - first) / self.ctx.fs < self.config.sustained_s:
            return []
        self._run_episode = replace(self._episode(first, last, Priority.URGENT, sustained=True,
                                                  **self._run_summary()), status="ongoing")
        return [self._run_episode]

    def _close_run(self, ended_by: str) -> list[Output]:
        out: list[Output] = []
        if self._run_episode is not None:
            out.append(replace(self._run_episode, offset=self.ctx.wall(self._run[-1].index),
                               offset_index=self._run[-1].index, status="ended",
                               details={**self._run_episode.details, **self._run_summary(),
                                        "ended_by": ended_by}))
        elif self._is_run():
            out.append(self._episode(self._run[0].index, self._run[-1].index, Priority.WARNING,
                                     sustained=False, **self._run_summary()))
        self._run = []
        self._run_episode = None
        return out

    def _episode(self, onset: int, offset: int, priority: Priority,
                 kind: str = "ventricular_run", **details: Any) -> Episode:
        return Episode(kind=kind, key=self.ctx.key, onset=self.ctx.wall(onset),
                       offset=self.ctx.wall(offset), onset_index=onset, offset_index=offset,
                       priority=priority, detector=self.name, detector_version=self.version,
                       details=dict(details))

    # -- burden ------------------------------------------------------------------------
    def _update_burden(self, beat: Beat) -> list[Output]:
        c = self.config
        self._recent.append(beat)
        horizon = beat.index - int(c.burden_window_s * self.ctx.fs)
        while self._recent and self._recent[0].index < horizon:
            self._recent.popleft()
        if (beat.index - self._recent[0].index) / self.ctx.fs < 0.9 * c.burden_window_s:
            return []  # not a full window yet
        n = len(self._recent)
        pvc = sum(1 for b in self._recent if b.label == "V")
        pac = sum(1 for b in self._recent if b.label == "S")
        pct = 100.0 * pvc / n
        minutes = c.burden_window_s / 60.0
        stats = {"pvc_burden_pct": round(pct, 1), "pvc_per_min": round(pvc / minutes, 1),
                 "pac_per_min": round(pac / minutes, 1)}
        if self._burden is None:
            if pct < c.pvc_burden_pct:
                return []
            onset = self._recent[0].index
            self._burden_peak = pct
            self._burden = replace(self._episode(onset, beat.index, Priority.INFO,
                                                 kind="frequent_pvcs", **stats),
                                   status="ongoing")
            return [self._burden]
        self._burden_peak = max(self._burden_peak, pct)
        if pct < c.burden_clear_pct:
            return self._end_burden(beat.index, "burden fell", stats)
        return []

    def _end_burden(self, end: int, why: str,
                    stats: dict[str, float] | None = None) -> list[Output]:
        if self._burden is None:
            return []
        ep = self._burden
        self._burden = None
        return [replace(ep, offset=self.ctx.wall(end), offset_index=end, status="ended",
                        details={**ep.details, **(stats or {}),
                                 "peak_pvc_burden_pct": round(self._burden_peak, 1),
                                 "ended_by": why})]
