"""Damage a trace the way SD cards and killed recorders do, and say what a reader must replay.

Used by the property tests (``tests/test_trace_damage.py``) and the fuzz run
(``tools/fuzz_trace.py``). A mutation flips bits, inserts or deletes bytes,
or truncates the file at random positions past the header. The ground truth
comes from the intact file's record boundaries:

* a record is *damaged* when a mutation touched one of its bytes (an
  insertion exactly between two records damages none);
* a record of a stream whose every declaration before it was damaged cannot
  be decoded either (it is skipped and counted);
* every other record must be replayed exactly as in the intact file, and
  the samples reported lost must be exactly those of the damaged block
  records that lie between two replayed blocks of their stream (before the
  first or after the last replayed block nobody can know what was there).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.trace.format import Annotation, RecordType, TraceInfo, read_trace
from edge.types import Block, Gap, GapReason, SourceItem

KINDS = ("flip", "insert", "delete", "truncate")


@dataclass(frozen=True)
class Rec:
    """One record of an intact trace: where it is, and what it holds."""

    offset: int
    size: int
    rtype: int
    sid: int | None  # stream it belongs to (declares, for STREAM)
    n: int = 0  # samples, for BLOCK


def parse(raw: bytes) -> tuple[int, list[Rec]]:
    """(header length, records) of an intact trace."""
    meta_len = struct.unpack_from("<I", raw, 12)[0]
    pos = head = 16 + meta_len + 4
    recs = []
    while pos < len(raw):
        length, rtype = struct.unpack_from("<IB", raw, pos)
        size = 5 + length + 4
        body = raw[pos + 4:pos + 5 + length]
        if struct.unpack_from("<I", raw, pos + 5 + length)[0] != zlib.crc32(body):
            raise ValueError(f"not an intact trace: bad record at byte {pos}")
        payload = body[1:]
        sid: int | None
        n = 0
        if rtype == RecordType.STREAM:
            sid = json.loads(payload)["id"]
        elif rtype in (RecordType.BLOCK, RecordType.GAP):
            sid = struct.unpack_from("<H", payload)[0]
            if rtype == RecordType.BLOCK:
                n = struct.unpack_from("<I", payload, 30)[0]
        elif rtype in (RecordType.VITAL, RecordType.ANNOTATION):
            sid = json.loads(payload)["s"]
        else:
            sid = None
        recs.append(Rec(pos, size, rtype, sid, n))
        pos += size
    return head, recs


def window(raw: bytes, head: int, recs: list[Rec], start: int, count: int,
           ) -> tuple[bytes, list[Rec], list[Rec]]:
    """A smaller intact trace: the header, the first declaration and ``count`` records from
    ``start`` on (a real trace's records, cut where a reader could meet them).

    Returns (bytes, its records, the same records as they are in ``raw``)."""
    first = [r for r in recs[:1] if r.rtype == RecordType.STREAM]
    picked = first + [r for r in recs[start:start + count] if r not in first]
    out = bytearray(raw[:head])
    new = []
    for r in picked:
        new.append(Rec(len(out), r.size, r.rtype, r.sid, r.n))
        out += raw[r.offset:r.offset + r.size]
    return bytes(out), new, picked


def mutate(raw: bytes, head: int, recs: list[Rec], rng: np.random.Generator, kind: str,
           ) -> tuple[bytes, set[int], str]:
    """(mutated bytes, indices of the damaged records, a one-line description)."""
    size = len(raw)
    if size <= head + 1:
        raise ValueError("nothing past the header to damage")
    starts = np.array([r.offset for r in recs])

    def containing(pos: int) -> int:
        return int(np.searchsorted(starts, pos, side="right")) - 1

    if kind == "flip":
        count = min(int(rng.integers(1, 51)), size - head)
        out = bytearray(raw)
        positions = head + rng.choice(size - head, count, replace=False)  # never twice
        for p in positions:
            out[int(p)] ^= 1 << int(rng.integers(0, 8))
        return bytes(out), {containing(int(p)) for p in positions}, f"{count} bits flipped"
    if kind == "insert":
        pos = int(rng.integers(head, size + 1))
        k = int(rng.integers(1, 1025))
        style = int(rng.integers(0, 3))
        junk = (rng.integers(0, 256, k, dtype=np.uint8).tobytes() if style == 0
                else bytes(k) if style == 1 else b"\xff" * k)
        out_b = raw[:pos] + junk + raw[pos:]
        a = recs[containing(pos)]
        whole = raw[a.offset:a.offset + a.size]
        # the record is intact if its bytes are still in one piece, before or after the
        # insertion (junk that repeats the bytes around it moves the insertion point)
        intact = pos == size or out_b[a.offset:a.offset + a.size] == whole \
            or out_b[a.offset + k:a.offset + k + a.size] == whole
        damaged = set() if intact else {containing(pos)}
        return out_b, damaged, f"{k} bytes inserted at {pos}"
    if kind == "delete":
        while True:
            pos = int(rng.integers(head, size))
            k = int(rng.integers(1, min(4096, size - pos) + 1))
            if pos + k == size:
                break
            # a cut that leaves whole records behind (exactly between records, or where two
            # records of the same length begin alike) is a consistent file: nothing a reader
            # can see as damage (the pipeline marks the sample-index jump as a sequence gap)
            a, b = recs[containing(pos)], recs[containing(pos + k)]
            if not (pos - a.offset == pos + k - b.offset
                    and raw[a.offset:pos] == raw[b.offset:pos + k]):
                break
        damaged = set(range(containing(pos), containing(pos + k - 1) + 1))
        return raw[:pos] + raw[pos + k:], damaged, f"{k} bytes deleted at {pos}"
    if kind == "truncate":
        pos = int(rng.integers(head, size))
        return raw[:pos], set(range(containing(pos), len(recs))), f"cut at {pos}"
    raise ValueError(f"unknown mutation {kind!r}")


def unusable(recs: list[Rec], damaged: set[int]) -> set[int]:
    """Damaged records, and those that lose their stream declaration to the damage."""
    out = set(damaged)
    declared: set[int] = set()
    for i, r in enumerate(recs):
        if i in damaged:
            continue
        if r.rtype == RecordType.STREAM and r.sid is not None:
            declared.add(r.sid)
        elif r.sid is not None and r.sid not in declared:
            out.add(i)
    return out


def expected_loss(recs: list[Rec], lost: set[int]) -> int:
    """Samples a reader can know were lost: lost blocks between two replayed blocks."""
    total = 0
    by_stream: dict[int, list[int]] = {}
    for i, r in enumerate(recs):
        if r.rtype == RecordType.BLOCK and r.sid is not None:
            by_stream.setdefault(r.sid, []).append(i)
    for blocks in by_stream.values():
        kept = [i for i in blocks if i not in lost]
        if len(kept) >= 2:
            total += sum(recs[i].n for i in blocks if kept[0] < i < kept[-1] and i in lost)
    return total


def fingerprint(item: SourceItem | Annotation) -> tuple[Any, ...]:
    """What must survive a replay exactly, as a comparable value."""
    if isinstance(item, Block):
        return ("block", item.key, item.seq, item.first_index, item.device_time,
                item.arrival, item.data.tobytes())
    return (type(item).__name__, item)


@dataclass
class Verdict:
    """How a reader did on one mutated trace."""

    ok: bool
    problem: str = ""
    info: TraceInfo | None = None


def judge(original_items: list[SourceItem | Annotation], recs: list[Rec], head: int,
          mutated_path: str | Path, damaged: set[int], mutated_size: int) -> Verdict:
    """Read the mutated trace and compare with what must be replayed and reported."""
    lost = unusable(recs, damaged)
    payload_recs = [(i, r) for i, r in enumerate(recs) if r.rtype != RecordType.STREAM]
    if len(payload_recs) != len(original_items):
        return Verdict(False, "original records and items do not line up")
    want = [fingerprint(it) for (i, _), it in zip(payload_recs, original_items, strict=True)
            if i not in lost]
    info, items = read_trace(mutated_path)
    got_items = list(items)
    spans = {(key, s, e) for d in info.damage for key, s, e, _, _ in d.lost}
    got, corrupt = [], []
    for it in got_items:
        if isinstance(it, Gap) and it.reason is GapReason.CORRUPT \
                and (it.key, it.start_index, it.end_index) in spans:
            corrupt.append(it)
        else:
            got.append(fingerprint(it))
    if got != want:
        missing = len([w for w in want if w not in got])
        return Verdict(False, f"replayed {len(got)} items, expected {len(want)} "
                              f"({missing} intact ones missing)", info)
    loss = expected_loss(recs, lost)
    if info.samples_lost != loss:
        return Verdict(False, f"reported {info.samples_lost} samples lost, expected {loss}",
                       info)
    if sum(g.n_missing or 0 for g in corrupt) != loss:
        return Verdict(False, "corrupt gaps do not cover the reported loss", info)
    kept_bytes = sum(r.size for i, r in enumerate(recs) if i not in lost)
    if info.bytes_dropped != mutated_size - head - kept_bytes:
        return Verdict(False, f"reported {info.bytes_dropped} bytes dropped, expected "
                              f"{mutated_size - head - kept_bytes}", info)
    return Verdict(True, info=info)


def rerecord(src: str | Path, out: str | Path) -> Path:
    """Write ``src``'s items to ``out`` through today's :class:`TraceWriter` (record sizes,
    repeated declarations): a real trace in the current recorder's layout."""
    from edge.trace.format import TraceWriter

    info, items = read_trace(src)
    got = list(items)
    anns = [a for a in got if isinstance(a, Annotation)]
    with TraceWriter(out, info.metadata) as writer:
        for key, fs, channels in info.streams.values():
            writer.declare(key, fs, channels)
        i = 0
        for item in got:
            if isinstance(item, Annotation):
                continue
            while isinstance(item, Block) and i < len(anns) and anns[i].index < item.end_index:
                writer.annotate(anns[i])  # labels go beside the samples they point at
                i += 1
            writer.write(item)
        for ann in anns[i:]:
            writer.annotate(ann)
    return Path(out)
