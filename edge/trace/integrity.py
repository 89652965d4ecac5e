"""Trace integrity: what a trace holds and what damage cost it; a clean copy of a damaged one.

``edge trace check`` and ``edge trace repair`` are thin commands over
:func:`check_trace` and :func:`repair_trace`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import TraceError
from edge.trace.format import Annotation, TraceInfo, TraceWriter, read_trace
from edge.types import Block, Gap, StreamKey, VitalSample


@dataclass
class StreamSummary:
    """One stream of a trace: how much signal it holds and where it has holes."""

    key: StreamKey
    fs: float
    channels: list[str]
    blocks: int = 0
    samples: int = 0
    first_index: int | None = None
    end_index: int | None = None
    gaps: dict[str, int] = field(default_factory=dict)
    vitals: int = 0
    annotations: int = 0

    def to_dict(self) -> dict[str, Any]:
        span = (None if self.first_index is None or self.end_index is None
                else round((self.end_index - self.first_index) / self.fs, 3) if self.fs else None)
        return {"stream": str(self.key), "fs": self.fs, "channels": self.channels,
                "blocks": self.blocks, "samples": self.samples,
                "seconds": round(self.samples / self.fs, 3) if self.fs else None,
                "first_index": self.first_index, "end_index": self.end_index,
                "span_seconds": span, "gaps": dict(sorted(self.gaps.items())),
                "vitals": self.vitals, "annotations": self.annotations}


def check_trace(path: str | Path) -> tuple[TraceInfo, list[StreamSummary]]:
    """Read a whole trace; return its info (damage included) and a summary per stream."""
    info, items = read_trace(path)
    streams: dict[StreamKey, StreamSummary] = {}

    def summary(key: StreamKey) -> StreamSummary:
        if key not in streams:
            fs, chans = next(((f, c) for k, f, c in info.streams.values() if k == key),
                             (0.0, ()))
            streams[key] = StreamSummary(key, fs, [f"{c.name} ({c.unit})" for c in chans])
        return streams[key]

    for item in items:
        s = summary(item.key)
        if isinstance(item, Block):
            s.blocks += 1
            s.samples += item.n_samples
            if s.first_index is None:
                s.first_index = item.first_index
            s.end_index = max(s.end_index or 0, item.end_index)
        elif isinstance(item, Gap):
            s.gaps[item.reason.value] = s.gaps.get(item.reason.value, 0) + 1
        elif isinstance(item, VitalSample):
            s.vitals += 1
        elif isinstance(item, Annotation):
            s.annotations += 1
    return info, list(streams.values())


def repair_trace(path: str | Path, out: str | Path) -> TraceInfo:
    """Write a clean copy of ``path`` to ``out``: every readable record, and a ``corrupt``
    gap record wherever damage cost samples. Returns what reading ``path`` found.

    Raises :class:`~edge.errors.TraceError` when the trace has no readable stream
    (nothing to repair) or ``out`` exists.
    """
    from edge.config import TraceConfig

    info, items = read_trace(path)
    meta = dict(info.metadata)
    meta["repaired_from"] = Path(path).name
    meta["repaired_at"] = time.time()
    # records are copied as they are: no splitting, one fsync when the copy is complete
    cfg = TraceConfig(fsync_s=0.0, max_record_s=0.0)
    try:
        writer = TraceWriter(out, meta, config=cfg)
    except FileExistsError as exc:
        raise TraceError(f"{out}: exists already (a repair never overwrites)") from exc
    declared: set[int] = set()
    samples = 0
    with writer:
        for item in items:
            for sid in sorted(set(info.streams) - declared):  # declarations in file order
                key, fs, channels = info.streams[sid]
                if not writer.has_stream(key):
                    writer.declare(key, fs, channels)
                declared.add(sid)
            if isinstance(item, Annotation):
                writer.annotate(item)
            else:
                writer.write(item)
                if isinstance(item, Block):
                    samples += item.n_samples
    if samples == 0 and info.damage:
        Path(out).unlink(missing_ok=True)
        raise TraceError(f"{path}: no readable stream in this trace, nothing to repair "
                         f"({info.bytes_dropped:,} of {info.size:,} bytes damaged)")
    return info

