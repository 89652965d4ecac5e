"""A ring of the most recent samples of one channel, addressed by stream sample index."""

from __future__ import annotations

import numpy as np


class SampleRing:
    """The last ``n`` samples of a stream; a non-contiguous push starts it afresh."""

    def __init__(self, n: int) -> None:
        self._buf = np.full(max(1, n), np.nan, dtype=np.float64)
        self.end = 0  # stream index one past the newest sample
        self.filled = 0

    @property
    def first(self) -> int:
        """Stream index of the oldest sample held."""
        return self.end - self.filled

    def reset(self) -> None:
        self.filled = 0

    def push(self, start: int, x: np.ndarray) -> None:
        n = self._buf.size
        if self.filled and start != self.end:
            self.reset()  # never splice unrelated samples
        end = start + len(x)
        x = x[-n:]
        self._buf = np.roll(self._buf, -len(x))
        self._buf[n - len(x):] = x
        self.end = end
        self.filled = min(n, self.filled + len(x))

    def segment(self, start: int, end: int) -> np.ndarray | None:
        """Samples ``[start, end)`` clipped to what is held, or None if none are."""
        start, end = max(start, self.first), min(end, self.end)
        if end <= start:
            return None
        n = self._buf.size
        return self._buf[n - (self.end - start):n - (self.end - end)].copy()
