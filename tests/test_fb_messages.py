"""Messages: every type round-trips byte-exactly; encoders refuse bad values; decoders refuse
malformed payloads with PayloadError only; helpers (physical units, time sync, negotiation)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fb_strategies import MESSAGE_STRATEGIES, header

from firmware_bridge import (
    INVALID_INT16,
    INVALID_INT24,
    MAX_FRAME_SIZE,
    Channel,
    ChannelTable,
    FrameTooLongError,
    Hello,
    Log,
    Message,
    MsgType,
    PayloadError,
    SampleFormat,
    Samples,
    Status,
    Stream,
    TimeSyncResponse,
    UnknownTypeError,
    VersionError,
    Vital,
    Vitals,
    WelcomeResult,
    choose_version,
    decode_frame,
    encode_frame,
)
from firmware_bridge.messages import MESSAGE_TYPES


def _round_trip(msg: Message) -> Message:
    wire = encode_frame(msg)
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    return decode_frame(wire[:-1])


@pytest.mark.parametrize("name", list(MESSAGE_STRATEGIES))
@given(data=st.data())
def test_every_message_type_round_trips(name: str, data: st.DataObject) -> None:
    msg = data.draw(MESSAGE_STRATEGIES[name])
    back = _round_trip(msg)
    assert back == msg
    assert encode_frame(back) == encode_frame(msg)


@given(header())
def test_vitals_nan_means_not_available_and_survives(h: dict[str, int]) -> None:
    msg = Vitals(items=(Vital(1, float("nan"), 1),), **h)
    back = _round_trip(msg)
    assert isinstance(back, Vitals) and math.isnan(back.items[0].value)


def test_decoded_samples_are_int16_or_sign_extended_int32() -> None:
    data16 = np.array([[INVALID_INT16, 32767]], dtype=np.int16)
    back = _round_trip(Samples(stream_id=1, first_sample_index=0, sample_format=1, data=data16))
    assert back.data.dtype == np.int16 and back.data.tolist() == [[-32768, 32767]]
    data24 = np.array([[INVALID_INT24, -1, 8388607, -2]], dtype=np.int32)
    back = _round_trip(Samples(stream_id=1, first_sample_index=0, sample_format=2, data=data24))
    assert back.data.dtype == np.int32 and back.data.tolist() == data24.tolist()


def test_frame_exactly_at_max_size_and_one_over() -> None:
    at_max = Samples(stream_id=1, first_sample_index=0, sample_format=SampleFormat.INT16,
                     data=np.ones((99, 5), dtype=np.int16))  # 16 + 14 + 990 + 4 = 1024
    assert len(decode_frame(encode_frame(at_max)[:-1]).data) == 99
    over = Log(level=0, text="x" * 255)
    assert len(encode_frame(over)) < MAX_FRAME_SIZE
    too_big = Vitals(items=tuple(Vital(1, 1.0, 1) for _ in range(126)))
    with pytest.raises(PayloadError):
        encode_frame(too_big)
    one_over = Samples(stream_id=1, first_sample_index=0, sample_format=SampleFormat.INT16,
                       data=np.ones((496, 1), dtype=np.int16))
    with pytest.raises(FrameTooLongError):
        encode_frame(one_over)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Status(battery_percent=101),
        lambda: Status(battery_percent=5, seq=2**32),
        lambda: Samples(stream_id=1, first_sample_index=0, sample_format=2,
                        data=np.array([[2**23]], dtype=np.int32)),
        lambda: Samples(stream_id=1, first_sample_index=0, sample_format=3,
                        data=np.zeros((1, 1), dtype=np.int16)),
        lambda: Samples(stream_id=1, first_sample_index=0, sample_format=1,
                        data=np.zeros((1, 0), dtype=np.int16)),
        lambda: Samples(stream_id=1, first_sample_index=0, sample_format=1,
                        data=np.zeros((2, 2), dtype=np.float32)),
        lambda: Hello(device_id=1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                      streams=(Stream(1, 1, 0.0, (Channel("a", "mV"),)),)),
        lambda: Hello(device_id=1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                      streams=(Stream(1, 1, 1.0, (Channel("a", "µV"),)),)),
        lambda: Hello(device_id=1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                      streams=(Stream(1, 1, 1.0, (Channel("a", "mV"),)),) * 2),
        lambda: Hello(device_id=1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                      streams=(Stream(1, 1, 1.0, (Channel("n" * 33, "mV"),)),)),
        lambda: Log(level=1, text="\ud800"),
        lambda: Log(level=1, text="é" * 128),
        lambda: Vitals(items=(Vital(1, 1e39, 1),)),
    ],
)
def test_encoder_refuses_values_that_do_not_fit(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PayloadError):
        encode_frame(bad())


@pytest.mark.parametrize("mtype", sorted(MESSAGE_TYPES))
@given(payload=st.binary(max_size=300))
def test_random_payloads_raise_only_payload_error(mtype: int, payload: bytes) -> None:
    cls = MESSAGE_TYPES[mtype]
    try:
        msg = cls.decode_payload(memoryview(payload), seq=0, timestamp_us=0, flags=0, version=1)
    except PayloadError:
        return
    # Reserved bytes are ignored and LOG repairs bad UTF-8, so compare sizes, not bytes.
    assert len(msg.encode_payload()) == len(payload) or isinstance(msg, Log)


def test_unknown_type_and_bad_version_from_decode_frame() -> None:
    from firmware_bridge.vectors.make_vectors import raw_frame

    with pytest.raises(UnknownTypeError):
        decode_frame(raw_frame(1, 0x7E, b"")[:-1])
    with pytest.raises(VersionError):
        decode_frame(raw_frame(2, MsgType.STATUS, struct.pack("<BBHI", 1, 0, 0, 0))[:-1])
    hello_v9 = raw_frame(9, MsgType.HELLO, struct.pack("<QBBHBBBx", 1, 1, 0, 0, 1, 9, 0))
    assert isinstance(decode_frame(hello_v9[:-1]), Hello)  # HELLO's layout is version-free


def test_to_physical_scales_per_channel_and_marks_invalid_as_nan() -> None:
    hello = Hello(device_id=7, fw_version=(1, 0, 0), proto_min=1, proto_max=1, streams=(
        Stream(4, SampleFormat.INT24, 250.0, (Channel("I", "uV", 0.5, 0.0),
                                              Channel("II", "mV", 0.25, -1.0))),))
    table = ChannelTable(hello)
    raw = np.array([[2, 8], [INVALID_INT24, 0]], dtype=np.int32)
    samples = decode_frame(encode_frame(Samples(stream_id=4, first_sample_index=0,
                                                sample_format=2, data=raw))[:-1])
    phys = table.to_physical(samples)
    assert phys[0].tolist() == [1.0, 1.0]
    assert math.isnan(phys[1, 0]) and phys[1, 1] == -1.0
    assert table.units(4) == ["uV", "mV"]
    with pytest.raises(PayloadError):
        table.stream(5)
    wrong = Samples(stream_id=4, first_sample_index=0, sample_format=2,
                    data=np.zeros((1, 3), dtype=np.int32))
    with pytest.raises(PayloadError):
        table.to_physical(wrong)


def test_time_sync_offset_and_delay() -> None:
    # requester sends at 1000, responder (clock +5000) receives at 6010, replies at 6015,
    # requester receives at 1030: one-way 10 us out, 15 us back.
    resp = TimeSyncResponse(t1=1000, t2=6010, t3=6015)
    offset, delay = resp.offset_delay(1030)
    assert delay == 25
    assert abs(offset - 5000) <= delay / 2


@pytest.mark.parametrize(
    ("pmin", "pmax", "chosen", "result"),
    [(1, 1, 1, WelcomeResult.OK), (1, 5, 1, WelcomeResult.OK),
     (2, 5, 0, WelcomeResult.NO_COMMON_VERSION)],
)
def test_version_negotiation(pmin: int, pmax: int, chosen: int, result: int) -> None:
    hello = Hello(device_id=1, fw_version=(1, 0, 0), proto_min=pmin, proto_max=pmax)
    welcome = choose_version(hello, {1})
    assert (welcome.chosen_version, welcome.result) == (chosen, result)
    assert choose_version(hello, {1, 2, 3}).chosen_version in (0, min(pmax, 3))
