"""The vitals-edge trace file: what a source delivered, with arrival times.

Documented in ``docs/trace-format.md``. In short::

    file    = header record*
    header  = "VEDGETRC" u16 version u16 reserved u32 json_len json u32 crc32
    record  = u32 payload_len u8 type payload u32 crc32(type + payload)

All integers little-endian. Records are appended and flushed one at a time,
so a crash (power loss, kill -9) can only leave a partial *last* record: the
reader stops at the first record whose length runs past the end of the file
or whose CRC fails, and reports how many bytes it had to drop.
"""

from __future__ import annotations

import enum
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from edge.errors import TraceError
from edge.types import (
    Block,
    ChannelSpec,
    Gap,
    GapReason,
    SourceItem,
    StreamKey,
    VitalKind,
    VitalSample,
)

MAGIC = b"VEDGETRC"
VERSION = 1
_HEADER_FIXED = struct.Struct("<8sHHI")
_RECORD_HEAD = struct.Struct("<IB")
_CRC = struct.Struct("<I")
_BLOCK_HEAD = struct.Struct("<HIqddI")
_GAP = struct.Struct("<HqqBdd")
MAX_RECORD = 64 * 1024 * 1024

_GAP_REASONS = list(GapReason)


class RecordType(enum.IntEnum):
    STREAM = 1
    BLOCK = 2
    GAP = 3
    VITAL = 4
    ANNOTATION = 5


@dataclass(frozen=True, slots=True)
class Annotation:
    """A reference label carried along a recorded trace (e.g. a WFDB beat label)."""

    key: StreamKey
    index: int
    symbol: str
    aux: str = ""


@dataclass
class TraceInfo:
    """What :func:`read_trace` found: metadata, and how the file ended."""

    metadata: dict[str, Any]
    streams: dict[int, tuple[StreamKey, float, tuple[ChannelSpec, ...]]] = field(
        default_factory=dict
    )
    records: int = 0
    complete: bool = True
    dropped_tail_bytes: int = 0


class TraceWriter:
    """Appends items to a trace file, one flushed record at a time.

    ``fsync_every`` records are followed by an ``os.fsync`` (0 = never): a
    trade between SD-card wear and how much a power cut may lose. Flushing to
    the OS after every record already survives a crash of this process.
    """

    def __init__(self, path: str | Path, metadata: dict[str, Any] | None = None,
                 fsync_every: int = 0) -> None:
        self.path = Path(path)
        self._fsync_every = fsync_every
        self._since_sync = 0
        self._stream_ids: dict[StreamKey, int] = {}
        self._fh: IO[bytes] = open(self.path, "xb")  # noqa: SIM115 - closed in close()
        meta = json.dumps(metadata or {}, sort_keys=True).encode()
        head = _HEADER_FIXED.pack(MAGIC, VERSION, 0, len(meta)) + meta
        self._fh.write(head + _CRC.pack(zlib.crc32(head)))
        self._fh.flush()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def _record(self, rtype: RecordType, payload: bytes) -> None:
        body = bytes([rtype]) + payload
        self._fh.write(struct.pack("<I", len(payload)) + body + _CRC.pack(zlib.crc32(body)))
        self._fh.flush()
        self._since_sync += 1
        if self._fsync_every and self._since_sync >= self._fsync_every:
            os.fsync(self._fh.fileno())
            self._since_sync = 0

    def _stream_id(self, key: StreamKey, fs: float, channels: tuple[ChannelSpec, ...]) -> int:
        sid = self._stream_ids.get(key)
        if sid is None:
            sid = len(self._stream_ids)
            self._stream_ids[key] = sid
            desc = {
                "id": sid, "device": key.device, "stream": key.stream, "fs": fs,
                "channels": [{"name": c.name, "unit": c.unit} for c in channels],
            }
            self._record(RecordType.STREAM, json.dumps(desc).encode())
        return sid

    def declare(self, key: StreamKey, fs: float, channels: tuple[ChannelSpec, ...]) -> None:
        """Declare a stream before its first block (needed for gaps and annotations)."""
        self._stream_id(key, fs, channels)

    def write(self, item: SourceItem) -> None:
        if isinstance(item, Block):
            sid = self._stream_id(item.key, item.fs, item.channels)
            data = np.ascontiguousarray(item.data, dtype="<f4")
            head = _BLOCK_HEAD.pack(sid, item.seq & 0xFFFFFFFF, item.first_index,
                                    item.device_time, item.arrival, item.n_samples)
            self._record(RecordType.BLOCK, head + data.tobytes())
        elif isinstance(item, Gap):
            sid = self._known(item.key)
            end = -1 if item.end_index is None else item.end_index
            self._record(RecordType.GAP, _GAP.pack(sid, item.start_index, end,
                                                   _GAP_REASONS.index(item.reason),
                                                   item.arrival, item.fs or 0.0))
        elif isinstance(item, VitalSample):
            sid = self._known(item.key, declare=True)
            rec = {"s": sid, "kind": item.kind.value, "value": item.value, "unit": item.unit,
                   "t": item.device_time, "arrival": item.arrival, "q": item.quality,
                   "source": item.source}
            self._record(RecordType.VITAL, json.dumps(rec).encode())
        else:
            raise TypeError(f"cannot write {type(item).__name__} to a trace")

    def has_stream(self, key: StreamKey) -> bool:
        return key in self._stream_ids

    def annotate(self, ann: Annotation) -> None:
        sid = self._known(ann.key)
        rec = {"s": sid, "i": ann.index, "sym": ann.symbol, "aux": ann.aux}
        self._record(RecordType.ANNOTATION, json.dumps(rec).encode())

    def _known(self, key: StreamKey, declare: bool = False) -> int:
        if key not in self._stream_ids:
            if declare:
                return self._stream_id(key, 0.0, ())
            raise TraceError(f"stream {key} used before it was declared")
        return self._stream_ids[key]


def _read_header(fh: IO[bytes], path: Path) -> dict[str, Any]:
    fixed = fh.read(_HEADER_FIXED.size)
    if len(fixed) < _HEADER_FIXED.size or fixed[:8] != MAGIC:
        raise TraceError(f"{path}: not a vitals-edge trace (bad magic)")
    _, version, _, meta_len = _HEADER_FIXED.unpack(fixed)
    if version > VERSION:
        raise TraceError(f"{path}: trace version {version} is newer than supported ({VERSION})")
    meta = fh.read(meta_len)
    crc = fh.read(4)
    if len(meta) < meta_len or len(crc) < 4 or _CRC.unpack(crc)[0] != zlib.crc32(fixed + meta):
        raise TraceError(f"{path}: trace header is corrupt")
    return dict(json.loads(meta))


def read_trace(path: str | Path) -> tuple[TraceInfo, Iterator[SourceItem | Annotation]]:
    """Open a trace; return its info and an iterator over its items, in file order.

    The iterator stops at a truncated or corrupt tail; ``info.complete`` and
    ``info.dropped_tail_bytes`` say so once it is exhausted.
    """
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the generator
    except OSError as exc:
        raise TraceError(f"{p}: cannot open trace ({exc.strerror})") from exc
    try:
        info = TraceInfo(metadata=_read_header(fh, p))
    except BaseException:
        fh.close()
        raise
    size = os.fstat(fh.fileno()).st_size
    return info, _iter_records(fh, size, info)


def _iter_records(fh: IO[bytes], size: int, info: TraceInfo) -> Iterator[SourceItem | Annotation]:
    with fh:
        while True:
            start = fh.tell()
            head = fh.read(_RECORD_HEAD.size)
            if not head:
                return
            if len(head) < _RECORD_HEAD.size:
                break
            length, rtype = _RECORD_HEAD.unpack(head)
            if length > MAX_RECORD or start + _RECORD_HEAD.size + length + 4 > size:
                break
            payload = fh.read(length)
            crc = fh.read(4)
            if _CRC.unpack(crc)[0] != zlib.crc32(head[4:] + payload):
                break
            info.records += 1
            try:
                item = _decode(rtype, payload, info)
            except (KeyError, ValueError, IndexError, struct.error) as exc:
                raise TraceError(
                    f"record {info.records} at byte {start} is malformed ({type(exc).__name__})"
                ) from exc
            if item is not None:
                yield item
        info.complete = False
        info.dropped_tail_bytes = size - start


def _decode(rtype: int, payload: bytes, info: TraceInfo) -> SourceItem | Annotation | None:
    if rtype == RecordType.STREAM:
        d = json.loads(payload)
        channels = tuple(ChannelSpec(c["name"], c["unit"]) for c in d["channels"])
        info.streams[d["id"]] = (StreamKey(d["device"], d["stream"]), float(d["fs"]), channels)
        return None
    if rtype == RecordType.BLOCK:
        sid, seq, first, dev_t, arrival, n = _BLOCK_HEAD.unpack_from(payload)
        key, fs, channels = info.streams[sid]
        data = np.frombuffer(payload, dtype="<f4", offset=_BLOCK_HEAD.size)
        data = data.reshape(n, len(channels)).astype(np.float32)
        return Block(key, channels, fs, seq, first, dev_t, arrival, data)
    if rtype == RecordType.GAP:
        sid, start, end, reason, arrival, fs = _GAP.unpack(payload)
        key = info.streams[sid][0]
        return Gap(key, start, None if end < 0 else end, _GAP_REASONS[reason], arrival, fs or None)
    if rtype == RecordType.VITAL:
        d = json.loads(payload)
        key = info.streams[d["s"]][0]
        return VitalSample(key, VitalKind(d["kind"]), d["value"], d["unit"], d["t"],
                           d["arrival"], d["q"], d["source"])
    if rtype == RecordType.ANNOTATION:
        d = json.loads(payload)
        return Annotation(info.streams[d["s"]][0], d["i"], d["sym"], d["aux"])
    return None  # a record type from a newer minor version: skip it
