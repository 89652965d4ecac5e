"""Report each record as an evaluation finishes it (for a progress bar; no output here)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Called with each record once the evaluation is done with it.
OnRecord = Callable[[str], None]


def each(records: Iterable[T], on_record: OnRecord | None) -> Iterator[T]:
    """Yield ``records``; call ``on_record(str(record))`` after the caller's loop body ran."""
    for record in records:
        yield record
        if on_record is not None:
            on_record(str(record))
