"""``edge record``: write what a source delivers to a trace file."""

from __future__ import annotations

import time

import click

from edge.cli.common import run_async
from edge.sources.base import Source
from edge.sources.open import open_replay
from edge.trace.format import TraceWriter
from edge.types import Block, StreamKey


async def record_source(src: Source, out: str, metadata: dict[str, object],
                        max_seconds: float | None = None) -> int:
    """Copy every item ``src`` yields into a new trace at ``out``; return the item count."""
    n = 0
    ends: dict[StreamKey, int] = {}
    with TraceWriter(out, metadata) as writer:
        async with src:
            first_arrival: float | None = None
            async for item in src:
                writer.write(item)
                n += 1
                if isinstance(item, Block):
                    ends[item.key] = item.end_index
                if first_arrival is None:
                    first_arrival = item.arrival
                if max_seconds is not None and item.arrival - first_arrival >= max_seconds:
                    break
        # reference labels travel with a replayed recording (WFDB annotations)
        for ann in getattr(src, "annotations", []):
            if ann.index < ends.get(ann.key, 0):
                writer.annotate(ann)
    return n


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--from", "from_path", type=click.Path(), required=True,
              help="Record from a replayed file (trace, WFDB or CSV).")
@click.option("--fs", type=float, default=None, help="Sample rate of a CSV input.")
@click.option("--speed", type=float, default=None, help="Replay pace (default: fast).")
@click.option("--seconds", type=float, default=None, help="Stop after this much stream time.")
def record(out: str, from_path: str, fs: float | None, speed: float | None,
           seconds: float | None) -> None:
    """Record a source into the trace file OUT (append-only, crash-safe).

    Live transports add their own options (--serial, --ble) to this command.
    """
    src = open_replay(from_path, fs=fs, speed=speed)
    meta = {"recorded_at": time.time(), "source": f"replay:{from_path}"}
    n = run_async(record_source(src, out, meta, seconds))
    click.echo(f"{out}: {n} items recorded")
