"""Replay a recording or a trace as if a device were streaming it.

The same pipeline runs live and in replay; only the source differs. Arrival
times come from a :class:`~edge.clock.VirtualClock`, so a replay at any
``speed`` (or as fast as possible) gives identical results run after run.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from edge.clock import VirtualClock
from edge.errors import TraceError
from edge.sources.base import Source
from edge.trace.format import Annotation, read_trace
from edge.trace.recordings import Recording
from edge.types import Block, Gap, SourceItem, StreamKey, VitalSample

log = logging.getLogger(__name__)


class RecordingSource(Source):
    """Streams a :class:`Recording` in blocks of ``block_s`` seconds."""

    name = "replay"

    def __init__(self, recording: Recording, *, device: str = "replay", stream: str = "ecg",
                 block_s: float = 0.25, clock: VirtualClock | None = None,
                 loop: bool = False) -> None:
        super().__init__()
        if block_s <= 0:
            raise ValueError("block_s must be positive")
        self.recording = recording
        self.key = StreamKey(device, stream)
        self.block_len = max(1, int(round(block_s * recording.fs)))
        self.clock = clock or VirtualClock(start_wall=recording.start_wall or 0.0)
        self.loop = loop
        self.annotations = [
            Annotation(self.key, int(i), s, a)
            for i, s, a in zip(recording.ann_index, recording.ann_symbol,
                               recording.ann_aux or [""] * len(recording.ann_symbol), strict=True)
        ]

    async def items(self) -> AsyncIterator[SourceItem]:
        """Blocks in order; with ``loop`` the recording repeats as one continuous stream."""
        rec = self.recording
        seq, base = 0, 0
        while True:
            for start in range(0, rec.n_samples, self.block_len):
                data = rec.signal[start:start + self.block_len]
                first = base + start
                await self.clock.sleep_until((first + data.shape[0]) / rec.fs)
                self.stats.blocks += 1
                self.stats.samples += data.shape[0]
                yield Block(self.key, rec.channels, rec.fs, seq, first, first / rec.fs,
                            self.clock.now(), np.ascontiguousarray(data, dtype=np.float32))
                seq += 1
            if not self.loop:
                return
            base += rec.n_samples


class TraceSource(Source):
    """Streams a vitals-edge trace, paced by the device times it recorded.

    Arrival times are re-stamped on the virtual clock (the recorded ones are
    kept in the file for latency analysis); gaps and vitals are replayed as
    recorded. Annotations are collected in :attr:`annotations`.

    A damaged trace is replayed around its damage: what was lost arrives as
    gaps with reason ``corrupt``, and when the trace has been read one warning
    line names the damage (``info.damage_report()`` has the figures). A trace
    with damage and no readable sample at all is refused at once
    (:class:`~edge.errors.TraceError`).
    """

    name = "trace"

    def __init__(self, path: str | Path, *, clock: VirtualClock | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.info, items = read_trace(self.path)
        head: list[SourceItem | Annotation] = []
        for item in items:  # read up to the first sample: is there a readable stream?
            head.append(item)
            if isinstance(item, Block | VitalSample):
                break
        else:
            if self.info.damage:
                raise TraceError(f"{self.path}: no readable stream in this trace "
                                 f"({self.info.bytes_dropped:,} of {self.info.size:,} bytes "
                                 f"damaged, from byte {self.info.damage[0].offset:,})")
        self._items = itertools.chain(head, items)
        start = float(self.info.metadata.get("start_wall", 0.0))
        self.clock = clock or VirtualClock(start_wall=start)
        self.annotations: list[Annotation] = []
        self.seconds = 0.0  # stream time replayed, of the first waveform stream

    async def items(self) -> AsyncIterator[SourceItem]:
        t0: float | None = None
        first: StreamKey | None = None
        for item in self._items:
            if isinstance(item, Annotation):
                self.annotations.append(item)
                continue
            if isinstance(item, Block):
                if t0 is None:
                    t0 = item.device_time
                if first is None:
                    first = item.key
                if item.key == first:
                    self.seconds += item.duration
                end_t = item.device_time - t0 + item.n_samples / item.fs
                await self.clock.sleep_until(end_t)
                self.stats.blocks += 1
                self.stats.samples += item.n_samples
                yield Block(item.key, item.channels, item.fs, item.seq, item.first_index,
                            item.device_time, self.clock.now(), item.data)
            elif isinstance(item, Gap):
                self.stats.gaps += 1
                yield Gap(item.key, item.start_index, item.end_index, item.reason,
                          self.clock.now(), item.fs)
            elif isinstance(item, VitalSample):
                self.stats.vitals += 1
                yield item
        for _ in self.info.damage:
            self.stats.count_error("trace_damage")
        if self.info.damage:
            log.warning("%s", self.info.damage_line(self.path))
