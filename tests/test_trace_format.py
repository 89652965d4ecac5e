"""The trace file: versioned, append-only, and recoverable after a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest

from edge.errors import TraceError
from edge.trace.format import Annotation, TraceWriter, read_trace
from edge.types import Block, ChannelSpec, Gap, GapReason, StreamKey, VitalKind, VitalSample

KEY = StreamKey("dev1", "ecg")
CH = (ChannelSpec("ECG", "mV"),)


def _block(seq: int, first: int, n: int = 50) -> Block:
    data = np.arange(first, first + n, dtype=np.float32).reshape(n, 1) / 100
    return Block(KEY, CH, 250.0, seq, first, first / 250, first / 250 + 0.01, data)


def _write(path, n_blocks=5):
    with TraceWriter(path, {"note": "test"}) as w:
        w.declare(KEY, 250.0, CH)
        w.annotate(Annotation(KEY, 10, "N"))
        for i in range(n_blocks):
            w.write(_block(i, i * 50))
        w.write(Gap(KEY, 250, 300, GapReason.SEQUENCE, 1.5, 250.0))
        w.write(VitalSample(KEY, VitalKind.SPO2, 97.0, "%", 1.0, 1.1))


def test_everything_written_reads_back_identically(tmp_path):
    path = tmp_path / "t.vetrace"
    _write(path)
    info, items = read_trace(path)
    items = list(items)
    assert info.metadata == {"note": "test"}
    assert info.complete and info.dropped_tail_bytes == 0
    assert isinstance(items[0], Annotation) and items[0].symbol == "N"
    blocks = [i for i in items if isinstance(i, Block)]
    assert [b.seq for b in blocks] == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(blocks[2].data, _block(2, 100).data)
    assert blocks[2].arrival == pytest.approx(100 / 250 + 0.01)
    gap = next(i for i in items if isinstance(i, Gap))
    assert (gap.start_index, gap.end_index, gap.reason) == (250, 300, GapReason.SEQUENCE)
    vital = items[-1]
    assert isinstance(vital, VitalSample) and vital.value == 97.0


@pytest.mark.parametrize("cut", [1, 3, 7, 20, 60])
def test_a_truncated_tail_is_recovered_up_to_the_last_whole_record(tmp_path, cut):
    path = tmp_path / "t.vetrace"
    _write(path)
    whole = list(read_trace(path)[1])
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - cut)
    info, items = read_trace(path)
    got = list(items)
    assert not info.complete
    assert info.dropped_tail_bytes > 0
    assert len(got) == len(whole) - 1  # exactly the last record is lost
    assert all(type(a) is type(b) for a, b in zip(got, whole, strict=False))


def test_a_corrupted_byte_stops_reading_at_that_record(tmp_path):
    path = tmp_path / "t.vetrace"
    _write(path)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size - 10)
        b = fh.read(1)
        fh.seek(size - 10)
        fh.write(bytes([b[0] ^ 0xFF]))
    info, items = read_trace(path)
    list(items)
    assert not info.complete


def test_a_file_that_is_not_a_trace_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "x.vetrace"
    path.write_bytes(b"hello world, not a trace")
    with pytest.raises(TraceError, match="not a vitals-edge trace"):
        read_trace(path)


def test_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "t.vetrace"
    _write(path)
    raw = bytearray(path.read_bytes())
    raw[8] = 99
    path.write_bytes(bytes(raw))
    with pytest.raises(TraceError, match="newer"):
        read_trace(path)


def test_the_writer_never_overwrites_an_existing_trace(tmp_path):
    path = tmp_path / "t.vetrace"
    _write(path)
    with pytest.raises(FileExistsError):
        TraceWriter(path)


def test_a_killed_writer_leaves_a_readable_file(tmp_path):
    """A child process writes blocks and is killed with SIGKILL mid-stream."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "k.vetrace"
    code = f"""
import numpy as np, sys
from edge.trace.format import TraceWriter
from edge.types import Block, ChannelSpec, StreamKey
k = StreamKey('d', 'ecg'); ch = (ChannelSpec('ECG', 'mV'),)
w = TraceWriter({str(path)!r})
i = 0
while True:
    w.write(Block(k, ch, 250.0, i, i * 25, 0.0, 0.0, np.zeros((25, 1), np.float32)))
    i += 1
    if i == 200:
        print('ready', flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, items = read_trace(path)
    blocks = list(items)
    assert len(blocks) >= 200
    assert [b.seq for b in blocks] == list(range(len(blocks)))
