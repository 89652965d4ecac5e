"""COBS framing and CRC-32C: catalogue check values, known encodings, round-trip properties."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import cobs
from firmware_bridge.crc import crc16_ccitt_false, crc32c, crc32c_pure
from firmware_bridge.errors import CobsError, FrameTooLongError


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c_pure(b"123456789") == 0xE3069283


def test_crc16_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@given(st.binary(max_size=1100))
def test_crc32c_vectorised_path_equals_byte_loop(data: bytes) -> None:
    assert crc32c(data) == crc32c_pure(data)


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_crc32c_can_be_continued(a: bytes, b: bytes) -> None:
    assert crc32c_pure(b, crc32c_pure(a)) == crc32c(a + b)


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),  # minimal: no trailing 0x01
        (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
        (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    ],
)
def test_cobs_known_encodings(raw: bytes, encoded: bytes) -> None:
    assert cobs.encode(raw) == encoded
    assert cobs.decode(encoded) == raw


def test_cobs_accepts_non_minimal_trailing_block() -> None:
    assert cobs.decode(b"\xff" + bytes(range(1, 255)) + b"\x01") == bytes(range(1, 255))


@given(st.binary(max_size=2000))
def test_cobs_round_trip_has_no_zero_and_bounded_overhead(data: bytes) -> None:
    enc = cobs.encode(data)
    assert b"\x00" not in enc
    assert len(enc) <= cobs.max_encoded_len(len(data))
    assert cobs.decode(enc) == data


@given(st.lists(st.sampled_from([b"\x00", b"\xff", b"\x01", b"\x00" * 3, bytes(253)[1:] or b"",
                                 bytes(range(1, 255)), bytes(range(1, 254))]), max_size=12))
def test_cobs_round_trip_block_boundaries(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert cobs.decode(cobs.encode(data)) == data


@pytest.mark.parametrize("bad", [b"\x05\x01\x02", b"\x02\x01\x00\x01", b"\x00"])
def test_cobs_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(CobsError):
        cobs.decode(bad)


@given(st.binary(max_size=1500))
def test_cobs_decode_of_garbage_raises_only_cobs_errors(data: bytes) -> None:
    with contextlib.suppress(CobsError, FrameTooLongError):
        cobs.decode(data.replace(b"\x00", b"\x01"), 1024)


def test_cobs_decode_limit_counts_like_a_byte_stream() -> None:
    assert len(cobs.decode(cobs.encode(bytes(1024)), 1024)) == 1024
    with pytest.raises(FrameTooLongError):
        cobs.decode(cobs.encode(bytes(1025)), 1024)
    with pytest.raises(FrameTooLongError):  # truncated, but already too long when cut off
        cobs.decode(b"\xff" + b"\x01" * 1030, 1024)
