"""The one interface every sensor source implements (BLE, serial, replay).

A source is an async context manager (it opens its link on enter and always
closes it on exit) and an async iterator of :data:`~edge.types.SourceItem`.
The pipeline never knows which transport fed a block.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType

from edge.types import SourceItem


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
