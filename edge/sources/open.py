"""Open a recording on disk as a replay source, whatever its format."""

from __future__ import annotations

from pathlib import Path

from edge.clock import VirtualClock
from edge.errors import RecordFormatError
from edge.sources.base import Source
from edge.sources.replay import RecordingSource, TraceSource
from edge.trace.format import MAGIC
from edge.trace.recordings import load_csv, load_wfdb

#: Default replay start (UTC) for records that carry no date: fixed, so replays are repeatable.
DEFAULT_START_WALL = 946684800.0  # 2000-01-01T00:00:00Z


def detect_format(path: str | Path) -> str:
    p = Path(path)
    if p.suffix == ".csv":
        return "csv"
    if p.suffix in (".hea", ".dat") or Path(f"{p}.hea").exists():
        return "wfdb"
    if p.is_file():
        with open(p, "rb") as fh:
            if fh.read(len(MAGIC)) == MAGIC:
                return "trace"
    raise RecordFormatError(f"{p}: not a trace, WFDB record or CSV file (use --format)")


def open_replay(path: str | Path, *, fmt: str = "auto", fs: float | None = None,
                channel: str | None = None, annotator: str | None = "atr",
                speed: float | None = None, block_s: float = 0.25,
                start_wall: float | None = None, device: str = "replay",
                loop: bool = False) -> Source:
    """A source that replays ``path`` (trace, WFDB record or CSV) on a virtual clock."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "trace" and loop:
        raise RecordFormatError(f"{path}: looping is for WFDB and CSV recordings, not traces")
    if fmt == "trace":
        src = TraceSource(path)
        start = start_wall if start_wall is not None else float(
            src.info.metadata.get("start_wall") or DEFAULT_START_WALL)
        src.clock = VirtualClock(start_wall=start, speed=speed)
        return src
    if fmt == "wfdb":
        rec = load_wfdb(path, channel=channel, annotator=annotator)
    elif fmt == "csv":
        if fs is None:
            raise RecordFormatError(f"{path}: a CSV file needs its sample rate (--fs)")
        rec = load_csv(path, fs, column=channel)
    else:
        raise RecordFormatError(f"unknown format {fmt!r} (expected auto, trace, wfdb or csv)")
    start = start_wall if start_wall is not None else (rec.start_wall or DEFAULT_START_WALL)
    return RecordingSource(rec, device=device, block_s=block_s, loop=loop,
                           clock=VirtualClock(start_wall=start, speed=speed))
