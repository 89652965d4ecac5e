"""Hypothesis strategies for every firmware_bridge message (imported by the other test_fb_* files).

Sizes are kept within one frame and within the C harness's default capacity
(8 streams, 32 channels) so the same strategies feed the C cross-check.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import (
    MAX_FRAME_SIZE,
    Ack,
    Channel,
    Hello,
    Log,
    Message,
    Nack,
    SampleFormat,
    Samples,
    Status,
    Stream,
    TimeSyncRequest,
    TimeSyncResponse,
    Vital,
    Vitals,
    Welcome,
    encode_frame,
)
from firmware_bridge import cobs as cobs_mod

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
positive_f32 = st.floats(width=32, min_value=0.0009765625, max_value=65536.0)


def header() -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({"seq": u32, "timestamp_us": u64, "flags": u8})


def _short_text(codec: str) -> st.SearchStrategy[str]:
    if codec == "ascii":
        text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=10)
    else:
        text = st.text(max_size=8)
    return text.filter(lambda s: len(s.encode(codec)) <= 32)


channels = st.builds(Channel, _short_text("utf-8"), _short_text("ascii"), f32, f32)


@st.composite
def streams(draw: st.DrawFn) -> tuple[Stream, ...]:
    ids = draw(st.lists(u8, max_size=3, unique=True))
    return tuple(
        Stream(sid, draw(st.sampled_from(list(SampleFormat))), draw(positive_f32),
               tuple(draw(st.lists(channels, min_size=1, max_size=4))))
        for sid in ids
    )


hellos = st.builds(
    lambda h, dev, fw, pmin, pmax, ss: Hello(
        device_id=dev, fw_version=fw, proto_min=pmin, proto_max=pmax, streams=ss, **h),
    header(), u64, st.tuples(u8, u8, u16), u8, u8, streams(),
)
welcomes = st.builds(lambda h, c, r, t: Welcome(chosen_version=c, result=r, gateway_time_us=t,
                                                **h), header(), u8, u8, u64)


@st.composite
def samples(draw: st.DrawFn) -> Samples:
    fmt = draw(st.sampled_from(list(SampleFormat)))
    width = 2 if fmt == SampleFormat.INT16 else 3
    nch = draw(st.integers(1, 8))
    n = draw(st.integers(1, (MAX_FRAME_SIZE - 20 - 14) // (nch * width)))
    lo, hi = (-(2**15), 2**15 - 1) if width == 2 else (-(2**23), 2**23 - 1)
    values = draw(st.lists(st.integers(lo, hi), min_size=n * nch, max_size=n * nch))
    dtype = np.int16 if width == 2 else np.int32
    return Samples(stream_id=draw(u8), first_sample_index=draw(u64), sample_format=fmt,
                   data=np.array(values, dtype=dtype).reshape(n, nch), **draw(header()))


vitals = st.builds(
    lambda h, items: Vitals(items=tuple(items), **h),
    header(), st.lists(st.builds(Vital, u8, f32, u8, u8), max_size=20),
)
statuses = st.builds(
    lambda h, b, c, mv, e: Status(battery_percent=b, contact=c, battery_mv=mv, error_flags=e,
                                  **h),
    header(), st.one_of(st.integers(0, 100), st.just(255)), u8, u16, u32,
)
sync_requests = st.builds(lambda h, t1: TimeSyncRequest(t1=t1, **h), header(), u64)
sync_responses = st.builds(lambda h, a, b, c: TimeSyncResponse(t1=a, t2=b, t3=c, **h),
                           header(), u64, u64, u64)
acks = st.builds(lambda cls, h, s, t, r: cls(acked_seq=s, acked_type=t, reason=r, **h),
                 st.sampled_from([Ack, Nack]), header(), u32, u8, u8)
logs = st.builds(lambda h, lvl, text: Log(level=lvl, text=text, **h), header(), u8,
                 st.text(max_size=60).filter(lambda s: len(s.encode()) <= 255))

MESSAGE_STRATEGIES: dict[str, st.SearchStrategy[Message]] = {
    "HELLO": hellos,
    "WELCOME": welcomes,
    "SAMPLES": samples(),
    "VITALS": vitals,
    "STATUS": statuses,
    "TIME_SYNC_REQ": sync_requests,
    "TIME_SYNC_RESP": sync_responses,
    "ACK_NACK": acks,
    "LOG": logs,
}
messages = st.one_of(*MESSAGE_STRATEGIES.values())


@given(messages)
def test_generated_messages_fit_one_frame(msg: Message) -> None:
    wire = encode_frame(msg)
    assert len(wire) <= cobs_mod.max_encoded_len(MAX_FRAME_SIZE) + 1
