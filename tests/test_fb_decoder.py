"""Streaming decoder: resynchronises after corruption, counts every error class, handles any
split of the byte stream, skips unknown types, and keeps memory bounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fb_strategies import messages

from firmware_bridge import (
    MAX_FRAME_SIZE,
    FrameDecoder,
    Message,
    Samples,
    Status,
    encode_frame,
)
from firmware_bridge.constants import MAX_ENCODED_SIZE, MsgType
from firmware_bridge.vectors.make_vectors import raw_frame


def _status(seq: int) -> bytes:
    return encode_frame(Status(seq=seq, timestamp_us=seq * 1000, battery_percent=50))


def _samples(seq: int) -> bytes:
    data = np.arange(200, dtype=np.int16).reshape(25, 8) - 100
    return encode_frame(Samples(seq=seq, stream_id=1, first_sample_index=25 * seq,
                                sample_format=1, data=data))


def test_corrupted_frame_between_two_good_frames_costs_only_itself() -> None:
    bad = bytearray(_samples(2))
    bad[40] ^= 0x10
    dec = FrameDecoder()
    out = dec.feed(_samples(1) + bytes(bad) + _samples(3))
    assert [m.seq for m in out] == [1, 3]
    assert dec.stats.frames_ok == 2
    assert dec.stats.errors == 1 and dec.stats.crc_errors == 1
    assert dec.stats.bytes_discarded == len(bad) - 1


def test_garbage_before_first_frame_is_one_error_then_in_sync() -> None:
    dec = FrameDecoder()
    out = dec.feed(b"\x13\x37 noise from a booting MCU" + b"\x00" + _status(1))
    assert [m.seq for m in out] == [1]
    assert dec.stats.errors == 1


def test_zero_inserted_inside_a_frame_loses_that_frame_only() -> None:
    frame = _samples(2)
    dec = FrameDecoder()
    out = dec.feed(_samples(1) + frame[:100] + b"\x00" + frame[100:] + _samples(3))
    assert [m.seq for m in out] == [1, 3]
    assert dec.stats.errors == 2  # the two halves


def test_back_to_back_delimiters_are_idle_not_errors() -> None:
    dec = FrameDecoder()
    out = dec.feed(b"\x00\x00" + _status(1) + b"\x00\x00\x00" + _status(2))
    assert len(out) == 2 and dec.stats.errors == 0


@pytest.mark.parametrize("make", [_status, _samples])
def test_bytes_split_at_every_position(make) -> None:  # type: ignore[no-untyped-def]
    stream = make(1) + make(2) + make(3)
    for cut in range(len(stream) + 1):
        dec = FrameDecoder()
        out = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
        assert [m.seq for m in out] == [1, 2, 3], cut
        assert dec.stats.errors == 0


def test_byte_by_byte_feeding() -> None:
    stream = _samples(1) + _status(2)
    dec = FrameDecoder()
    out: list[Message] = []
    for b in stream:
        out += dec.feed(bytes([b]))
    assert [m.seq for m in out] == [1, 2]


@settings(max_examples=50)
@given(st.lists(messages, min_size=1, max_size=5), st.data())
def test_random_messages_random_splits(msgs: list[Message], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    dec = FrameDecoder()
    out: list[Message] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += dec.feed(stream[a:b])
    assert out == msgs


def test_unknown_message_type_is_skipped_and_counted() -> None:
    future = raw_frame(1, 0x7E, b"a message from protocol v1.5")
    dec = FrameDecoder()
    out = dec.feed(_status(1) + future + _status(2))
    assert [m.seq for m in out] == [1, 2]
    assert dec.stats.unknown_type == 1
    assert dec.stats.errors == 0 and dec.stats.bytes_discarded == 0


def test_each_error_class_is_counted_once() -> None:
    import struct

    status = struct.pack("<BBHI", 50, 0, 0, 0)
    cases = {
        "crc_errors": raw_frame(1, MsgType.STATUS, status, crc_xor=0x100),
        "cobs_errors": b"\x09\x01\x02\x00",
        "short_frames": b"\x05\x01\x02\x03\x04\x00",
        "too_long": b"\xff" * 2000 + b"\x00",
        "bad_version": raw_frame(3, MsgType.STATUS, status),
        "payload_errors": raw_frame(1, MsgType.STATUS, status + b"\x00"),
    }
    for counter, frame in cases.items():
        dec = FrameDecoder()
        out = dec.feed(frame + _status(9))
        assert [m.seq for m in out] == [9], counter
        stats = dec.stats.as_dict()
        assert stats.pop(counter) == 1, counter
        assert stats.pop("frames_ok") == 1
        assert stats.pop("bytes_discarded") == len(frame) - 1
        assert not any(stats.values()), (counter, stats)


def test_stream_without_delimiter_keeps_memory_bounded() -> None:
    dec = FrameDecoder()
    chunk = bytes(range(1, 256)) * 257  # 65535 bytes, no 0x00
    for _ in range(160):  # ~10 MB
        assert dec.feed(chunk) == []
        assert dec.buffered <= MAX_ENCODED_SIZE
    assert dec.stats.too_long == 1
    out = dec.feed(b"\x00" + _status(7))
    assert [m.seq for m in out] == [7]
    assert dec.stats.bytes_discarded == 160 * len(chunk)


def test_frame_just_under_the_limit_is_held_then_decoded() -> None:
    frame = encode_frame(Samples(stream_id=1, first_sample_index=0, sample_format=1,
                                 data=np.full((99, 5), 0x0101, dtype=np.int16)))
    assert len(frame) - 1 <= MAX_ENCODED_SIZE
    dec = FrameDecoder()
    assert dec.feed(frame[:-1]) == [] and dec.buffered == len(frame) - 1
    assert len(dec.feed(b"\x00")) == 1
    assert MAX_FRAME_SIZE == 1024


def test_reset_drops_a_partial_frame() -> None:
    dec = FrameDecoder()
    dec.feed(_status(1)[:10])
    dec.reset()
    assert dec.buffered == 0
    assert [m.seq for m in dec.feed(_status(2))] == [2]
