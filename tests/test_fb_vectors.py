"""The committed vectors file: up to date with make_vectors.py, and the Python codec produces
and accepts exactly its bytes (the C side is checked in test_fb_c_crosscheck.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from firmware_bridge import FrameDecoder, Vitals, encode_frame
from firmware_bridge.vectorfmt import Vector, format_message, parse_line
from firmware_bridge.vectors import make_vectors

VECTORS = Path(make_vectors.__file__).with_name("vectors.txt")


def _vectors() -> list[Vector]:
    lines = VECTORS.read_text(encoding="utf-8").splitlines()
    return [v for v in map(parse_line, lines) if v is not None]


def test_vectors_file_is_up_to_date() -> None:
    assert make_vectors.main(["--check"]) == 0


def test_vectors_cover_the_required_edge_cases() -> None:
    names = {v.name for v in _vectors()}
    for needed in ("samples_all_zero_payload", "samples_max_frame_int16",
                   "samples_max_frame_int24", "samples_int24_negative_and_invalid",
                   "samples_int16_invalid_code", "seq_wrap_last", "seq_wrap_first",
                   "samples_cobs_full_block_at_end", "unknown_type_0x7e"):
        assert needed in names
    wires = {v.name: v.wire for v in _vectors()}
    from firmware_bridge import cobs

    assert len(cobs.decode(wires["samples_max_frame_int16"][:-1])) == 1024
    assert len(cobs.decode(wires["samples_max_frame_int24"][:-1])) == 1024
    assert wires["samples_cobs_full_block_at_end"][-256] == 0xFF  # last block full, no 0x01


@pytest.mark.parametrize("vec", [v for v in _vectors() if v.kind == "V"], ids=lambda v: v.name)
def test_python_encodes_and_decodes_valid_vector(vec: Vector) -> None:
    assert vec.message is not None
    assert encode_frame(vec.message) == vec.wire
    dec = FrameDecoder()
    (msg,) = dec.feed(vec.wire)
    assert format_message(msg) == format_message(vec.message)  # bit-exact, NaN included
    if not (isinstance(msg, Vitals) and any(math.isnan(i.value) for i in msg.items)):
        assert msg == vec.message


@pytest.mark.parametrize("vec", [v for v in _vectors() if v.kind == "R"], ids=lambda v: v.name)
def test_python_rejects_reject_vector_under_expected_counter(vec: Vector) -> None:
    dec = FrameDecoder()
    assert dec.feed(vec.wire) == []
    stats = dec.stats.as_dict()
    stats.pop("bytes_discarded")
    assert stats.pop(vec.expect) == 1
    assert not any(stats.values())
