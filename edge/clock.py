"""Clocks: the gateway's time base, and the mapping from a device's clock to it.

Detection runs on sample indices and device time, so it is deterministic. What
needs the gateway's clock (latency, link supervision, wall-clock episode
times) asks a :class:`Clock`: the monotonic clock in production, a
:class:`VirtualClock` during replay so that a replay at any speed gives the same
results run after run.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic time base."""

    def wall(self) -> float:
        """UTC epoch seconds corresponding to :meth:`now`."""

    async def sleep_until(self, t: float) -> None:
        """Wait until :meth:`now` reaches ``t``."""


class MonotonicClock:
    """The real gateway clock: ``time.monotonic`` anchored to UTC at start."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)

    def to_wall(self, t: float) -> float:
        return self._wall0 + (t - self._mono0)

    async def sleep_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that only moves when told to: replay time, not wall time.

    With ``speed=None`` time jumps forward instantly (as fast as possible); with
    a speed it also paces the caller against the real clock, at ``speed`` times
    real time. Results never depend on the pacing, only on the virtual times.
    """

    def __init__(self, start_wall: float = 0.0, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self._t = 0.0
        self._start_wall = start_wall
        self._speed = speed
        self._real0: float | None = None

    def now(self) -> float:
        return self._t

    def wall(self) -> float:
        return self._start_wall + self._t

    def to_wall(self, t: float) -> float:
        return self._start_wall + t

    async def sleep_until(self, t: float) -> None:
        if t > self._t:
            self._t = t
        if self._speed is None:
            await asyncio.sleep(0)  # let other tasks run; never wait for real time
            return
        if self._real0 is None:
            self._real0 = time.monotonic()
        target = self._real0 + self._t / self._speed
        delay = target - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


@dataclass(frozen=True, slots=True)
class ClockFit:
    """``gateway_time = device_time * (1 + drift) + offset``."""

    offset: float
    drift: float  # fractional; 20e-6 is 20 ppm
    n_points: int

    def to_gateway(self, device_time: float) -> float:
        return device_time * (1.0 + self.drift) + self.offset

    @property
    def drift_ppm(self) -> float:
        return self.drift * 1e6


class DeviceClockEstimator:
    """Estimates a device clock's offset and drift against the gateway clock.

    Each observation pairs a device timestamp with the gateway arrival time.
    Transport delay only ever adds to the arrival time, so the best estimate
    of the mapping is the *lower envelope* of the points, not their mean
    (the convex-hull idea of Moon, Skelly & Towsley, "Estimation and removal
    of clock skew from network delay measurements", IEEE INFOCOM 1999). We
    keep the minimum-delay point of each of a few time buckets over a sliding
    window and fit a line through those minima: cheap, robust to bursts (BLE
    notifications arrive in bunches) and to queueing delay.
    """

    def __init__(self, window_s: float = 600.0, bucket_s: float = 10.0) -> None:
        self._window_s = window_s
        self._bucket_s = bucket_s
        self._buckets: deque[tuple[int, float, float]] = deque()  # (bucket, device, delay)
        self._first_device: float | None = None

    def observe(self, device_time: float, arrival: float) -> None:
        if self._first_device is None:
            self._first_device = device_time
        bucket = int((device_time - self._first_device) // self._bucket_s)
        delay = arrival - device_time
        if self._buckets and self._buckets[-1][0] == bucket:
            if delay < self._buckets[-1][2]:
                self._buckets[-1] = (bucket, device_time, delay)
        else:
            self._buckets.append((bucket, device_time, delay))
        horizon = bucket - int(self._window_s // self._bucket_s)
        while self._buckets and self._buckets[0][0] < horizon:
            self._buckets.popleft()

    def fit(self) -> ClockFit | None:
        """The current estimate, or ``None`` before the first observation."""
        if not self._buckets:
            return None
        dev = np.array([b[1] for b in self._buckets])
        delay = np.array([b[2] for b in self._buckets])
        if len(dev) < 3 or np.ptp(dev) <= 0:
            return ClockFit(offset=float(delay.min()), drift=0.0, n_points=len(dev))
        slope, intercept = np.polyfit(dev, delay, 1)
        return ClockFit(offset=float(intercept), drift=float(slope), n_points=len(dev))
