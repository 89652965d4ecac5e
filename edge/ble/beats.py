"""Beat times from Heart Rate Measurement RR intervals, which carry no timestamp.

0x2A37 notifications arrive in bursts (connection events), so the arrival time
of a notification is only an upper bound of when its last beat happened. The
RR intervals (1/1024 s, oldest first) are exact *between* beats, so beats are
placed on one continuous tick axis (1 tick = 1/1024 s) and mapped to gateway
time with ``time = offset + tick / 1024``, where ``offset`` follows the lower
envelope of ``arrival - tick / 1024`` (a beat cannot be later than the
notification that reports it; the earliest-arriving notification is the least
delayed one). When more time passed between two notifications than their RR
intervals explain (by more than ``tolerance`` s), beats were lost (a dropped
notification, a sensor that stops sending RR, a link loss): that stretch is
returned as a gap in ticks, and the axis jumps over it so later beats keep their
true times.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BeatUpdate:
    beat_times: list[float]  # gateway times of the new beats, oldest first
    beat_ticks: list[int]  # their positions on the tick axis
    gap: tuple[int, int] | None  # ticks [start, end) where beats were lost


class RrTimeline:
    TICKS_PER_S = 1024

    def __init__(self, tolerance: float = 1.5) -> None:
        self.tolerance = tolerance
        self.tick: int | None = None  # tick of the last beat placed
        self.offset: float | None = None

    def reset(self) -> None:
        """After a disconnect: the next notification re-anchors (the tick axis goes on)."""
        self.offset = None

    def add(self, arrival: float, rr_raw: tuple[int, ...] | list[int]) -> BeatUpdate:
        if not rr_raw:
            return BeatUpdate([], [], None)
        total = sum(rr_raw)
        gap = None
        if self.tick is None or self.offset is None:
            start = self.tick if self.tick is not None else 0
            if self.tick is not None:
                # re-anchored after a reset: the lost stretch ends where these beats begin
                end_tick = start + total
                self.offset = arrival - end_tick / self.TICKS_PER_S
            else:
                self.offset = arrival - (start + total) / self.TICKS_PER_S
        else:
            start = self.tick
            predicted_last = self.offset + (start + total) / self.TICKS_PER_S
            late = arrival - predicted_last
            if late > self.tolerance:
                missing = int(round(late * self.TICKS_PER_S))
                gap = (start, start + missing)
                start += missing
            elif late < 0:
                self.offset += late  # lower envelope: this one arrived with less delay
        ticks = []
        t = start
        for rr in rr_raw:
            t += rr
            ticks.append(t)
        self.tick = t
        assert self.offset is not None
        return BeatUpdate([self.offset + k / self.TICKS_PER_S for k in ticks], ticks, gap)
