"""The one interface every sensor source implements (BLE, serial, replay).

A source is an async context manager (it opens its link on enter and always
closes it on exit) and an async iterator of :data:`~edge.types.SourceItem`.
The pipeline never knows which transport fed a block.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType

from edge.types import Block, Gap, GapReason, SourceItem, StreamKey


@dataclass
class SourceStats:
    """Counters a source keeps; exported as metrics and shown by the CLI."""

    blocks: int = 0
    samples: int = 0
    vitals: int = 0
    gaps: int = 0
    reconnects: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def count_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Source(abc.ABC):
    """Base class of sources: ``async with src: async for item in src: ...``."""

    name: str = "source"

    def __init__(self) -> None:
        self.stats = SourceStats()

    async def __aenter__(self) -> Source:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open the link (default: nothing to open)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close the link; must be safe to call twice."""

    def __aiter__(self) -> AsyncIterator[SourceItem]:
        return self.items()

    @abc.abstractmethod
    def items(self) -> AsyncIterator[SourceItem]:
        """Yield blocks, vitals and gap markers until the source ends or is cancelled."""


class LiveBuffer:
    """Bounded hand-off from a transport callback (which cannot wait) to a source iterator.

    Radio notifications and serial reads arrive whether or not the pipeline is
    ready. When the buffer is full a new block is not stored; the samples it
    covered are remembered, and as soon as there is room a
    :class:`~edge.types.Gap` with reason ``overflow`` spanning everything that
    was dropped is queued in its place. Overflow costs data, visibly, never
    silently.
    """

    def __init__(self, maxsize: int, stats: SourceStats) -> None:
        self._queue: asyncio.Queue[SourceItem] = asyncio.Queue(maxsize)
        self._stats = stats
        self._dropped: dict[StreamKey, Gap] = {}

    def push(self, item: SourceItem) -> bool:
        """Offer an item without waiting; return False if it had to be dropped."""
        self._flush_gaps()
        if isinstance(item, Block) and item.key in self._dropped:
            self._drop(item)  # keep order: nothing of this stream may pass its gap
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            if isinstance(item, Block):
                self._drop(item)
            else:
                self._stats.count_error("overflow")
            return False

    def _drop(self, block: Block) -> None:
        self._stats.count_error("overflow")
        prev = self._dropped.get(block.key)
        start = block.first_index if prev is None else prev.start_index
        self._dropped[block.key] = Gap(block.key, start, block.end_index, GapReason.OVERFLOW,
                                       block.arrival, block.fs)

    def _flush_gaps(self) -> None:
        for key in list(self._dropped):
            if self._queue.full():
                return
            self._queue.put_nowait(self._dropped.pop(key))
            self._stats.gaps += 1

    async def get(self) -> SourceItem:
        item = await self._queue.get()
        self._flush_gaps()
        return item

    def qsize(self) -> int:
        return self._queue.qsize()
