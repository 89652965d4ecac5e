"""Reconnect delays: capped exponential backoff with jitter, shared by serial and BLE.

A link that drops is retried quickly at first (a USB re-plug takes about a
second, a BLE reconnect a few), then less and less often up to ``maximum`` so
that a wearable left unplugged for a night does not spin the gateway's CPU or
flood its log. Jitter keeps several links that dropped together (a USB hub
reset, the gateway's Bluetooth adapter restarting) from retrying in lock-step.

The delay of attempt ``n`` (0-based) is ``base = min(maximum, initial * factor**n)``
scaled by a uniform factor in ``[1 - jitter, 1]``: never above the cap, never
below ``(1 - jitter) * base`` ("equal jitter" when ``jitter = 0.5``; Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for successive reconnect attempts; :meth:`reset` after a good connection."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction in [0, 1]")

    def base(self, attempt: int) -> float:
        """The un-jittered delay of ``attempt`` (the upper bound of its jittered delay)."""
        # min() before pow() would overflow for a link that stays down for days
        exp = min(attempt, 64)
        return min(self.maximum, self.initial * self.factor ** exp)

    def next_delay(self) -> float:
        """The delay before the next attempt; advances the attempt counter."""
        base = self.base(self.attempt)
        self.attempt += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempt = 0
