"""The vitals-edge trace file: what a source delivered, with arrival times.

Documented in ``docs/trace-format.md``. In short::

    file    = header record*
    header  = "VEDGETRC" u16 version u16 reserved u32 json_len json u32 crc32
    record  = u32 payload_len u8 type payload u32 crc32(type + payload)

All integers little-endian. Records are appended and flushed one at a time
(forced to disk on the schedule of :class:`~edge.config.TraceConfig`), so a
crash can only tear the *last* record. Damage elsewhere (flipped bits, lost
or added bytes) costs only the records it touches: the reader resynchronises
on the next whole, CRC-checked and plausible record, yields a ``corrupt``
:class:`~edge.types.Gap` for the samples lost, and reports each damaged
stretch in :attr:`TraceInfo.damage`.
"""

from __future__ import annotations

import enum
import json
import mmap
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from edge.config import TraceConfig

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
class Damage:
    """One unreadable stretch of a trace file, and what it cost.

    ``offset`` and ``length`` are the bytes the reader had to skip (from the
    first byte that did not start a whole, CRC-checked record to the next one
    that does). ``lost`` holds the stream spans that went missing with it, as
    ``(stream, first_index, end_index, fs, at_s)`` where ``at_s`` is seconds
    since the stream's first sample in this trace.
    """

    offset: int
    length: int
    torn_tail: bool = False
    records_skipped: int = 0
    lost: list[tuple[StreamKey, int, int, float, float]] = field(default_factory=list)
    note: str = ""

    @property
    def samples_lost(self) -> int:
        return sum(end - start for _, start, end, _, _ in self.lost)

    @property
    def seconds_lost(self) -> float:
        return sum((end - start) / fs for _, start, end, fs, _ in self.lost)

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "bytes": self.length, "torn_tail": self.torn_tail,
                "records_skipped": self.records_skipped, "samples_lost": self.samples_lost,
                "seconds_lost": round(self.seconds_lost, 3),
                "at_s": round(self.lost[0][4], 3) if self.lost else None,
                "streams": sorted({str(key) for key, *_ in self.lost}),
                **({"note": self.note} if self.note else {})}


@dataclass
class TraceInfo:
    """What :func:`read_trace` found: metadata, and (once read) any damage.

    Damage is filled in while the items are read: look at it once the
    iterator is exhausted.
    """

    metadata: dict[str, Any]
    streams: dict[int, tuple[StreamKey, float, tuple[ChannelSpec, ...]]] = field(
        default_factory=dict
    )
    records: int = 0
    size: int = 0
    damage: list[Damage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every byte of the file was read as a whole, CRC-checked record."""
        return not self.damage

    @property
    def dropped_tail_bytes(self) -> int:
        """Bytes of a torn last record (a recorder stopped mid-write), else 0."""
        return self.damage[-1].length if self.damage and self.damage[-1].torn_tail else 0

    @property
    def bytes_dropped(self) -> int:
        return sum(d.length for d in self.damage)

    @property
    def records_skipped(self) -> int:
        return sum(d.records_skipped for d in self.damage)

    @property
    def samples_lost(self) -> int:
        return sum(d.samples_lost for d in self.damage)

    @property
    def seconds_lost(self) -> float:
        return sum(d.seconds_lost for d in self.damage)

    def damage_report(self) -> dict[str, Any]:
        """The damage figures as JSON-ready data (``places``: one entry per damaged stretch)."""
        return {"damaged": bool(self.damage), "records_read": self.records,
                "records_skipped": self.records_skipped, "bytes_dropped": self.bytes_dropped,
                "bytes_total": self.size, "samples_lost": self.samples_lost,
                "seconds_lost": round(self.seconds_lost, 3),
                "torn_tail": bool(self.damage) and self.damage[-1].torn_tail,
                "places": [d.to_dict() for d in self.damage]}

    def damage_line(self, name: str | Path = "trace") -> str:
        """One line naming the damage: what was skipped, what it cost, and where."""
        if not self.damage:
            return f"{name}: trace intact ({self.records:,} records)"
        middle = [d for d in self.damage if not d.torn_tail]
        torn = self.damage[-1] if self.damage[-1].torn_tail else None
        parts = []
        if middle:
            first = middle[0]
            where = f"first at byte {first.offset:,}"
            at = next((d.lost[0][4] for d in middle if d.lost), None)
            if at is not None:
                where += f"; first loss at stream time {_clock(at)}"
            lost = sum(d.samples_lost for d in middle)
            secs = sum(d.seconds_lost for d in middle)
            n = len(middle)
            skipped = sum(d.records_skipped for d in middle)
            parts.append(
                f"damaged at {n} place{'s' if n != 1 else ''} ({where}): "
                f"{skipped} block record{'s' if skipped != 1 else ''} skipped, "
                f"{sum(d.length for d in middle):,} bytes dropped, "
                + (f"{secs:.2f} s of stream time lost ({lost:,} samples), replaced by gaps"
                   if lost else "no samples lost"))
        if torn is not None:
            parts.append(f"ends in a torn record ({torn.length:,} bytes dropped at byte "
                         f"{torn.offset:,}, as when a recorder stops mid-write)")
        return f"{name}: trace " + "; ".join(parts)


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"


class TraceWriter:
    """Appends items to a trace file, one flushed record at a time.

    Every record is flushed to the OS as it is written (a crash of this
    process loses nothing). ``config`` (:class:`~edge.config.TraceConfig`)
    sets how often the file is forced to disk (``fsync_s``: what a power cut
    may lose), the longest block one record holds (``max_record_s``: what one
    bad sector may cost) and how often stream declarations are repeated.
    ``fsync_every`` records are also followed by an ``os.fsync`` (0 = never).
    """

    def __init__(self, path: str | Path, metadata: dict[str, Any] | None = None,
                 fsync_every: int = 0, config: TraceConfig | None = None) -> None:
        if config is None:
            from edge.config import TraceConfig

            config = TraceConfig()
        self.path = Path(path)
        self._config = config
        self._fsync_every = fsync_every
        self._since_sync = 0
        self._last_sync = time.monotonic()
        self._since_declare = 0
        self._stream_ids: dict[StreamKey, int] = {}
        self._declarations: list[bytes] = []
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
        self._since_declare += 1
        now = time.monotonic()
        if (self._fsync_every and self._since_sync >= self._fsync_every) or (
                self._config.fsync_s > 0 and now - self._last_sync >= self._config.fsync_s):
            os.fsync(self._fh.fileno())
            self._since_sync = 0
            self._last_sync = now

    def _redeclare(self) -> None:
        """Repeat every stream declaration now and then: a damaged one then costs little."""
        every = self._config.declare_every_records
        if every > 0 and self._since_declare >= every:
            self._since_declare = 0
            for desc in self._declarations:
                self._record(RecordType.STREAM, desc)

    def _stream_id(self, key: StreamKey, fs: float, channels: tuple[ChannelSpec, ...]) -> int:
        sid = self._stream_ids.get(key)
        if sid is None:
            sid = len(self._stream_ids)
            self._stream_ids[key] = sid
            desc = {
                "id": sid, "device": key.device, "stream": key.stream, "fs": fs,
                "channels": [{"name": c.name, "unit": c.unit} for c in channels],
            }
            self._declarations.append(json.dumps(desc).encode())
            self._record(RecordType.STREAM, self._declarations[-1])
        return sid

    def declare(self, key: StreamKey, fs: float, channels: tuple[ChannelSpec, ...]) -> None:
        """Declare a stream before its first block (needed for gaps and annotations)."""
        self._stream_id(key, fs, channels)

    def write(self, item: SourceItem) -> None:
        self._redeclare()
        if isinstance(item, Block):
            sid = self._stream_id(item.key, item.fs, item.channels)
            data = np.ascontiguousarray(item.data, dtype="<f4")
            step = max(1, int(self._config.max_record_s * item.fs)) \
                if self._config.max_record_s > 0 else item.n_samples
            for at in range(0, max(1, item.n_samples), step):  # long blocks: several records
                head = _BLOCK_HEAD.pack(sid, item.seq & 0xFFFFFFFF, item.first_index + at,
                                        item.device_time + at / item.fs, item.arrival,
                                        min(step, item.n_samples - at))
                self._record(RecordType.BLOCK, head + data[at:at + step].tobytes())
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
        self._redeclare()
        sid = self._known(ann.key)
        rec = {"s": sid, "i": ann.index, "sym": ann.symbol, "aux": ann.aux}
        self._record(RecordType.ANNOTATION, json.dumps(rec).encode())

    def _known(self, key: StreamKey, declare: bool = False) -> int:
        if key not in self._stream_ids:
            if declare:
                return self._stream_id(key, 0.0, ())
            raise TraceError(f"stream {key} used before it was declared")
        return self._stream_ids[key]


def _read_header(fh: IO[bytes], path: Path, size: int) -> tuple[dict[str, Any], int, bool]:
    """(metadata, offset of the first record, whether the header was damaged)."""
    fixed = fh.read(_HEADER_FIXED.size)
    if len(fixed) < _HEADER_FIXED.size or fixed[:8] != MAGIC:
        raise TraceError(f"{path}: not a vitals-edge trace (bad magic)")
    _, version, _, meta_len = _HEADER_FIXED.unpack(fixed)
    if version > VERSION:
        raise TraceError(f"{path}: trace version {version} is newer than supported ({VERSION})")
    meta = fh.read(meta_len) if meta_len <= size else b""
    crc = fh.read(4)
    if len(meta) == meta_len and len(crc) == 4 and _CRC.unpack(crc)[0] == zlib.crc32(
            fixed + meta):
        return dict(json.loads(meta)), _HEADER_FIXED.size + meta_len + 4, False
    # a damaged header costs its metadata (which bytes are wrong is unknown: none of it is
    # trusted, start_wall included), not the records after it
    return {}, _HEADER_FIXED.size, True


def read_trace(path: str | Path) -> tuple[TraceInfo, Iterator[SourceItem | Annotation]]:
    """Open a trace; return its info and an iterator over its items, in file order.

    Damage does not end the iteration: the reader skips to the next whole,
    CRC-checked and plausible record, yields a :class:`~edge.types.Gap` with
    reason ``corrupt`` for each stream's samples that were lost, and goes on.
    ``info.damage`` lists what was skipped once the iterator is exhausted.
    """
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the generator
    except OSError as exc:
        raise TraceError(f"{p}: cannot open trace ({exc.strerror})") from exc
    try:
        size = os.fstat(fh.fileno()).st_size
        metadata, first, damaged = _read_header(fh, p, size)
    except BaseException:
        fh.close()
        raise
    info = TraceInfo(metadata=metadata, size=size)
    return info, _Reader(info).items(fh, first, damaged)


#: Largest record a resynchronising reader accepts (twice the largest record already
#: read, if that is more): bounds the work spent on a garbage candidate.
RESYNC_MAX_RECORD = 1024 * 1024
_SCAN_CHUNK = 64 * 1024
_N_TYPES = max(RecordType)


class _Reader:
    """Reads records in order; after damage, resynchronises and accounts for what was lost."""

    def __init__(self, info: TraceInfo) -> None:
        self.info = info
        self.end: dict[int, int] = {}  # stream id -> index one past its last sample read
        self.origin: dict[int, int] = {}  # stream id -> its first sample index in the file
        self.seq: dict[int, int] = {}
        self.pending: dict[int, Damage] = {}  # streams whose loss to a damage is still unknown
        self.largest = 0

    def items(self, fh: IO[bytes], pos: int, header_damaged: bool,
              ) -> Iterator[SourceItem | Annotation]:
        size = self.info.size
        with fh:
            if pos >= size and not header_damaged:
                return
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            with mm:
                if header_damaged:
                    nxt = self._resync(mm, pos, size)
                    end = size if nxt is None else nxt
                    self._damaged(0, end, note="header damaged: metadata lost")
                    pos = end
                while pos < size:
                    rec = self._record_at(mm, pos, size, MAX_RECORD)
                    if rec is None:
                        nxt = self._resync(mm, pos + 1, size)
                        torn = nxt is None and self._torn(mm, pos, size)
                        end = size if nxt is None else nxt
                        self._damaged(pos, end, torn=torn)
                        pos = end
                        continue
                    rtype, payload, nxt = rec
                    yield from self._decode(rtype, payload, pos, nxt)
                    pos = nxt

    # -- framing ---------------------------------------------------------------
    @staticmethod
    def _record_at(mm: mmap.mmap, pos: int, size: int, limit: int,
                   ) -> tuple[int, bytes, int] | None:
        """(type, payload, next offset) of a whole record at ``pos`` whose CRC checks."""
        if pos + _RECORD_HEAD.size + 4 > size:
            return None
        length, rtype = _RECORD_HEAD.unpack(mm[pos:pos + _RECORD_HEAD.size])
        end = pos + _RECORD_HEAD.size + length
        if length > limit or end + 4 > size:
            return None
        body = mm[pos + 4:end]
        if _CRC.unpack(mm[end:end + 4])[0] != zlib.crc32(body):
            return None
        return rtype, body[1:], end + 4

    @staticmethod
    def _torn(mm: mmap.mmap, pos: int, size: int) -> bool:
        """Is the record at ``pos`` a last record cut short (its length runs past the end)?"""
        if pos + _RECORD_HEAD.size > size:
            return True
        length, rtype = _RECORD_HEAD.unpack(mm[pos:pos + _RECORD_HEAD.size])
        return 1 <= rtype <= _N_TYPES and pos + _RECORD_HEAD.size + length + 4 > size

    def _resync(self, mm: mmap.mmap, pos: int, size: int) -> int | None:
        """Offset of the next record at or after ``pos`` whose length, type and CRC check out
        and whose content is plausible here (known stream, sample index not going back)."""
        limit = min(MAX_RECORD, max(RESYNC_MAX_RECORD, 2 * self.largest))
        while pos + _RECORD_HEAD.size + 4 <= size:
            chunk = mm[pos:min(size, pos + _SCAN_CHUNK + _RECORD_HEAD.size)]
            a = np.frombuffer(chunk, dtype=np.uint8)
            n = len(chunk) - _RECORD_HEAD.size + 1  # offsets with a whole record head
            types = a[4:4 + n]
            idx = np.flatnonzero((types >= 1) & (types <= _N_TYPES))
            if idx.size:
                lengths = (a[idx].astype(np.uint64) | a[idx + 1].astype(np.uint64) << 8
                           | a[idx + 2].astype(np.uint64) << 16
                           | a[idx + 3].astype(np.uint64) << 24)
                ok = (lengths <= limit) & (
                    pos + idx + _RECORD_HEAD.size + lengths + 4 <= size)
                for i in idx[ok]:
                    cand = pos + int(i)
                    rec = self._record_at(mm, cand, size, limit)
                    if rec is not None and self._plausible(rec[0], rec[1]):
                        return cand
            pos += n
        return None

    def _plausible(self, rtype: int, payload: bytes) -> bool:
        """A record found by scanning must also make sense where it was found."""
        try:
            if rtype == RecordType.BLOCK:
                sid, _, first, _, _, n = _BLOCK_HEAD.unpack_from(payload)
                data = len(payload) - _BLOCK_HEAD.size
                if sid not in self.info.streams:  # its declaration may be what was lost
                    return n > 0 and data > 0 and data % (4 * n) == 0
                nch = len(self.info.streams[sid][2])
                return data == 4 * n * nch and first >= self.end.get(sid, first)
            if rtype == RecordType.GAP:
                sid, start, end, reason, _, _ = _GAP.unpack(payload)
                return (sid in self.info.streams and reason < len(_GAP_REASONS)
                        and start >= self.end.get(sid, start) and (end < 0 or end >= start))
            d = json.loads(payload)
            if rtype == RecordType.STREAM:
                known = self.info.streams.get(d["id"])
                key = StreamKey(d["device"], d["stream"])
                return (known is None or known[0] == key) and float(d["fs"]) >= 0 \
                    and isinstance(d["channels"], list)
            return isinstance(d, dict) and d["s"] in self.info.streams
        except (KeyError, ValueError, TypeError, struct.error):
            return False

    # -- accounting ------------------------------------------------------------
    def _damaged(self, start: int, end: int, torn: bool = False, note: str = "",
                 records: int = 0) -> Damage:
        last = self.info.damage[-1] if self.info.damage else None
        if last is not None and last.offset + last.length == start and not last.torn_tail:
            last.length += end - start  # one stretch: extend it
            last.records_skipped += records
            last.torn_tail = torn
            last.note = last.note or note
            dmg = last
        else:
            dmg = Damage(start, end - start, torn, records, note=note)
            self.info.damage.append(dmg)
        for sid in self.end:
            self.pending.setdefault(sid, dmg)
        return dmg

    def _lost(self, sid: int, upto: int, arrival: float, seq: int | None, n: int,
              ) -> Gap | None:
        """The corrupt gap of stream ``sid`` up to ``upto``, if a damage cost it samples."""
        dmg = self.pending.pop(sid, None)
        start = self.end.get(sid)
        if dmg is None or start is None or upto <= start:
            return None
        key, fs, _ = self.info.streams[sid]
        missing = upto - start
        skipped = (seq - self.seq[sid] - 1) & 0xFFFFFFFF if seq is not None and sid in self.seq \
            else 0
        if not 0 < skipped <= missing:  # sequence numbers shared or reset: estimate
            skipped = -(-missing // max(n, 1))
        dmg.records_skipped += skipped
        dmg.lost.append((key, start, upto, fs, (start - self.origin.get(sid, 0)) / fs))
        return Gap(key, start, upto, GapReason.CORRUPT, arrival, fs)

    # -- decoding --------------------------------------------------------------
    def _decode(self, rtype: int, payload: bytes, pos: int, nxt: int,
                ) -> Iterator[SourceItem | Annotation]:
        info = self.info
        info.records += 1
        self.largest = max(self.largest, len(payload))
        try:
            if rtype == RecordType.STREAM:
                d = json.loads(payload)
                channels = tuple(ChannelSpec(c["name"], c["unit"]) for c in d["channels"])
                info.streams[d["id"]] = (StreamKey(d["device"], d["stream"]), float(d["fs"]),
                                         channels)
                return
            sid = (_BLOCK_HEAD.unpack_from(payload)[0] if rtype == RecordType.BLOCK
                   else _GAP.unpack(payload)[0] if rtype == RecordType.GAP
                   else json.loads(payload)["s"] if rtype in (RecordType.VITAL,
                                                              RecordType.ANNOTATION)
                   else None)
            if sid is not None and sid not in info.streams:  # its declaration was damaged
                info.records -= 1
                self._damaged(pos, nxt, note="records of an undeclared stream", records=1)
                return
            if rtype == RecordType.BLOCK:
                sid, seq, first, dev_t, arrival, n = _BLOCK_HEAD.unpack_from(payload)
                key, fs, channels = info.streams[sid]
                data = np.frombuffer(payload, dtype="<f4", offset=_BLOCK_HEAD.size)
                data = data.reshape(n, len(channels)).astype(np.float32)
                gap = self._lost(sid, first, arrival, seq, n)
                if gap is not None:
                    yield gap
                self.origin.setdefault(sid, first)
                self.end[sid] = max(self.end.get(sid, first), first + n)
                self.seq[sid] = seq
                yield Block(key, channels, fs, seq, first, dev_t, arrival, data)
            elif rtype == RecordType.GAP:
                sid, start, end, reason, arrival, fs = _GAP.unpack(payload)
                key = info.streams[sid][0]
                lost = self._lost(sid, start, arrival, None, 1)
                if lost is not None:
                    yield lost
                if end >= 0 and sid in self.end:
                    self.end[sid] = max(self.end[sid], end)
                yield Gap(key, start, None if end < 0 else end, _GAP_REASONS[reason], arrival,
                          fs or None)
            elif rtype == RecordType.VITAL:
                d = json.loads(payload)
                key = info.streams[d["s"]][0]
                yield VitalSample(key, VitalKind(d["kind"]), d["value"], d["unit"], d["t"],
                                  d["arrival"], d["q"], d["source"])
            elif rtype == RecordType.ANNOTATION:
                d = json.loads(payload)
                yield Annotation(info.streams[d["s"]][0], d["i"], d["sym"], d["aux"])
            # any other type: from a newer minor version, skipped
        except (KeyError, ValueError, IndexError, struct.error) as exc:
            raise TraceError(
                f"record {info.records} at byte {pos} is malformed ({type(exc).__name__})"
            ) from exc
