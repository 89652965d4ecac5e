"""ECG beat detection as a pipeline step: windows in, beats out."""

from __future__ import annotations

from collections.abc import Iterable

from edge.dsp.qrs import QrsConfig, QrsDetector
from edge.pipeline import Item, Output, StreamContext
from edge.types import Beat, Gap
from edge.windowing import Window


class QrsProcessor:
    """Runs the streaming :class:`~edge.dsp.qrs.QrsDetector` on an ECG stream's first channel.

    After a gap the detector is reset at the first sample of the next window:
    filters and thresholds relearn rather than splice across missing data.
    """

    name = "qrs"

    def __init__(self, ctx: StreamContext, config: QrsConfig | None = None) -> None:
        self.ctx = ctx
        self.detector = QrsDetector(ctx.fs, config)
        self.version = QrsDetector.version
        self._next_index: int | None = None
        self._pending_reset = False

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Gap)

    def _beats(self, indices: Iterable[int]) -> list[Output]:
        fs = self.ctx.fs
        return [Beat(self.ctx.key, int(i), fs, int(i) / fs) for i in indices]

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            out = self._beats(self.detector.flush()) if self._next_index is not None else []
            self._pending_reset = True
            return out
        assert isinstance(item, Window)
        if self._next_index is None or self._pending_reset or item.start_index > self._next_index:
            self.detector.reset(item.start_index)
        self._pending_reset = False
        data = item.data[:, 0]
        if self._next_index is not None and item.start_index < self._next_index:
            data = data[self._next_index - item.start_index:]  # overlapping windows: new part only
        self._next_index = item.end_index
        return self._beats(self.detector.process(data))

    def flush(self) -> Iterable[Output]:
        return self._beats(self.detector.flush())
