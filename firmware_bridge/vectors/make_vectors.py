"""Generate ``vectors.txt``, the test vectors shared by the Python and C codecs.

Run from the repository root after a deliberate protocol change, then commit the result:

    python firmware_bridge/vectors/make_vectors.py            # rewrite vectors.txt
    python firmware_bridge/vectors/make_vectors.py --check    # exit 1 if it is stale

The file is generated from the Python codec and then frozen: the tests check
that both codecs still produce and accept exactly these bytes, so an
accidental wire change in either one fails loudly. Everything here is
deterministic (fixed seeds, no clock).
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from firmware_bridge import cobs  # noqa: E402
from firmware_bridge.constants import (  # noqa: E402
    INVALID_INT16,
    INVALID_INT24,
    ContactState,
    Flags,
    LogLevel,
    MsgType,
    NackReason,
    SampleFormat,
    StatusError,
    Unit,
    VitalFlags,
    VitalKind,
)
from firmware_bridge.crc import crc32c  # noqa: E402
from firmware_bridge.framing import encode_frame  # noqa: E402
from firmware_bridge.messages import (  # noqa: E402
    Ack,
    Channel,
    Hello,
    Log,
    Message,
    Nack,
    Samples,
    Status,
    Stream,
    TimeSyncRequest,
    TimeSyncResponse,
    Vital,
    Vitals,
    Welcome,
)
from firmware_bridge.vectorfmt import format_message  # noqa: E402

VECTORS_PATH = Path(__file__).with_name("vectors.txt")
TS = 1_234_567_890  # a device clock reading, microseconds


def raw_frame(version: int, mtype: int, payload: bytes, *, seq: int = 1, ts: int = TS,
              crc_xor: int = 0) -> bytes:
    """A wire frame with arbitrary header/payload (for frames the encoder refuses to make)."""
    body = struct.pack("<BBBxIQ", version, mtype, 0, seq, ts) + payload
    return cobs.encode(body + struct.pack("<I", crc32c(body) ^ crc_xor)) + b"\x00"


def hello() -> Hello:
    ecg = tuple(
        Channel(name, "uV", scale=0.2384185791015625, offset=0.0)
        for name in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    )
    return Hello(
        seq=0, timestamp_us=1_000, device_id=0x0123456789ABCDEF, fw_version=(2, 5, 301),
        proto_min=1, proto_max=1,
        streams=(
            Stream(1, SampleFormat.INT24, 250.0, ecg),
            Stream(2, SampleFormat.INT16, 100.0, (Channel("PLETH", "1", 1 / 32768, 0.0),
                                                  Channel("SpO2 red", "1", 1.0, -5.5))),
            Stream(3, SampleFormat.INT16, 0.5, (Channel("temp skin", "Cel", 0.01, 0.0),)),
        ),
    )


def ecg_block(n: int, nch: int, seed: int, amplitude: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 250.0
    wave = amplitude * np.sin(2 * math.pi * 1.2 * t + np.arange(nch)[None, :])
    return np.round(wave + rng.normal(0, amplitude / 50, (n, nch))).astype(np.int32)


def full_block_at_end() -> Samples:
    """SAMPLES whose last 254 frame bytes (data + CRC) are all non-zero.

    COBS then ends on a full 0xFF block, where encoders disagree about a
    trailing 0x01; the spec (and both codecs) use the minimal form without it.
    """
    i = np.arange(125)
    raw = (1 + i % 255) | ((1 + (i * 7) % 127) << 8)  # both bytes non-zero
    data = raw.astype(np.int16).reshape(125, 1)
    for seq in range(1000):
        msg = Samples(seq=seq, timestamp_us=TS, stream_id=3, first_sample_index=7,
                      sample_format=SampleFormat.INT16, data=data)
        body = cobs.decode(encode_frame(msg)[:-1])
        if 0 not in body[-254:]:
            return msg
    raise RuntimeError("no seq gives a CRC without zero bytes")  # pragma: no cover


def valid_messages() -> list[tuple[str, Message]]:
    """The V vectors: (name, message), in file order."""
    int24_edge = np.array(
        [[-1, 1, -2, 0x7FFFFF], [INVALID_INT24, -8388607, 0, -256], [-65536, 65535, -129, 128]],
        dtype=np.int32,
    )
    int16_edge = np.array([[INVALID_INT16, -32767, 32767, 0], [-1, 1, 0x00FF, -256]],
                          dtype=np.int16)
    h = hello()
    return [
        ("hello_three_streams", h),
        ("hello_no_streams", Hello(seq=1, timestamp_us=5, device_id=1, fw_version=(0, 0, 0),
                                   proto_min=1, proto_max=3)),
        ("welcome_v1", Welcome(seq=0, timestamp_us=77, chosen_version=1, result=0,
                               gateway_time_us=1_764_000_000_000_000)),
        ("welcome_refused", Welcome(seq=1, timestamp_us=78, chosen_version=0, result=1)),
        ("samples_int16_8ch_25", Samples(
            seq=2, timestamp_us=TS, stream_id=2, first_sample_index=1_000_000,
            sample_format=SampleFormat.INT16,
            data=ecg_block(25, 8, 1, 3000).astype(np.int16))),
        ("samples_int24_8ch_25", Samples(
            seq=3, timestamp_us=TS + 100_000, stream_id=1, first_sample_index=2**40 + 5,
            sample_format=SampleFormat.INT24, data=ecg_block(25, 8, 2, 2_000_000))),
        ("samples_int24_negative_and_invalid", Samples(
            seq=4, timestamp_us=TS, stream_id=1, first_sample_index=0,
            sample_format=SampleFormat.INT24, data=int24_edge)),
        ("samples_int16_invalid_code", Samples(
            seq=5, timestamp_us=TS, stream_id=2, first_sample_index=3,
            sample_format=SampleFormat.INT16, data=int16_edge)),
        ("samples_all_zero_payload", Samples(
            seq=0, timestamp_us=0, stream_id=0, first_sample_index=0,
            sample_format=SampleFormat.INT16, data=np.zeros((40, 4), dtype=np.int16))),
        ("samples_max_frame_int16", Samples(
            seq=6, timestamp_us=TS, stream_id=2, first_sample_index=99,
            sample_format=SampleFormat.INT16,
            data=ecg_block(99, 5, 3, 20000).astype(np.int16))),
        ("samples_max_frame_int24", Samples(
            seq=7, timestamp_us=TS, stream_id=1, first_sample_index=55,
            sample_format=SampleFormat.INT24, data=ecg_block(55, 6, 4, 4_000_000))),
        ("samples_cobs_full_block_at_end", full_block_at_end()),
        ("seq_wrap_last", Status(seq=0xFFFFFFFF, timestamp_us=TS, battery_percent=80)),
        ("seq_wrap_first", Status(seq=0, timestamp_us=TS + 1, battery_percent=80)),
        ("timestamp_max", TimeSyncRequest(seq=9, timestamp_us=2**64 - 1, t1=2**64 - 1)),
        ("vitals_all_kinds", Vitals(seq=10, timestamp_us=TS, items=(
            Vital(VitalKind.HEART_RATE, 72.0, Unit.PER_MIN),
            Vital(VitalKind.SPO2, 97.5, Unit.PERCENT),
            Vital(VitalKind.RESP_RATE, 16.0, Unit.PER_MIN, VitalFlags.QUESTIONABLE),
            Vital(VitalKind.TEMPERATURE, 36.8, Unit.CEL),
            Vital(VitalKind.BP_SYSTOLIC, 121.0, Unit.MM_HG),
            Vital(VitalKind.BP_DIASTOLIC, 79.0, Unit.MM_HG),
            Vital(VitalKind.BP_MEAN, 93.0, Unit.MM_HG, VitalFlags.CALIBRATING),
            Vital(VitalKind.PULSE_RATE, float("nan"), Unit.PER_MIN),
        ))),
        ("vitals_empty", Vitals(seq=11, timestamp_us=TS)),
        ("status_low_battery", Status(
            seq=12, timestamp_us=TS, flags=Flags.ACK_REQUESTED, battery_percent=7,
            contact=ContactState.POOR, battery_mv=3412,
            error_flags=StatusError.LOW_BATTERY | StatusError.SAMPLES_DROPPED)),
        ("status_unknown_battery", Status(seq=13, timestamp_us=TS, battery_percent=255)),
        ("time_sync_req", TimeSyncRequest(seq=14, timestamp_us=TS, t1=1_764_000_000_123_456)),
        ("time_sync_resp", TimeSyncResponse(seq=15, timestamp_us=TS, t1=1_764_000_000_123_456,
                                            t2=TS - 20, t3=TS - 5)),
        ("ack", Ack(seq=16, timestamp_us=TS, acked_seq=12, acked_type=MsgType.STATUS)),
        ("nack_busy", Nack(seq=17, timestamp_us=TS, flags=Flags.RETRANSMIT, acked_seq=0xFFFFFFFF,
                           acked_type=MsgType.VITALS, reason=NackReason.BUSY)),
        ("log_warn", Log(seq=18, timestamp_us=TS, level=LogLevel.WARN,
                         text="ADC ch3 saturated; AFE gain reduced")),
        ("log_utf8_empty", Log(seq=19, timestamp_us=TS, level=LogLevel.DEBUG, text="")),
        ("log_utf8", Log(seq=20, timestamp_us=TS, level=LogLevel.INFO, text="Temp 37 °C ✓")),
    ]


def reject_frames() -> list[tuple[str, str, bytes]]:
    """The R vectors: (name, expected DecoderStats counter, wire bytes)."""
    status = struct.pack("<BBHI", 50, 1, 3700, 0)
    good = encode_frame(Status(seq=1, timestamp_us=TS, battery_percent=50))
    body = bytearray(cobs.decode(good[:-1]))
    body[17] ^= 0x04
    too_long_body = bytes(range(1, 256)) * 4 + bytes(range(1, 6))  # 1025 bytes
    return [
        ("crc_bit_flip", "crc_errors", cobs.encode(bytes(body)) + b"\x00"),
        ("crc_wrong", "crc_errors", raw_frame(1, MsgType.STATUS, status, crc_xor=1)),
        ("cobs_block_past_end", "cobs_errors", bytes([0x09, 1, 2, 3]) + b"\x00"),
        ("short_frame", "short_frames", cobs.encode(bytes(19)) + b"\x00"),
        ("too_long_1025", "too_long", cobs.encode(too_long_body) + b"\x00"),
        ("too_long_no_delimiter_run", "too_long", bytes([0xFF] * 3000) + b"\x00"),
        ("bad_version_2", "bad_version", raw_frame(2, MsgType.STATUS, status)),
        ("unknown_type_0x7e", "unknown_type", raw_frame(1, 0x7E, b"future payload")),
        ("payload_samples_length", "payload_errors",
         raw_frame(1, MsgType.SAMPLES, struct.pack("<QBBBxH", 0, 1, 1, 2, 3) + bytes(5))),
        ("payload_samples_format", "payload_errors",
         raw_frame(1, MsgType.SAMPLES, struct.pack("<QBBBxH", 0, 1, 3, 1, 1) + bytes(4))),
        ("payload_status_battery", "payload_errors",
         raw_frame(1, MsgType.STATUS, struct.pack("<BBHI", 150, 1, 0, 0))),
        ("payload_vitals_count", "payload_errors",
         raw_frame(1, MsgType.VITALS, bytes([2, 0, 0, 0]) + bytes(8))),
        ("payload_log_length", "payload_errors", raw_frame(1, MsgType.LOG, bytes([1, 9]) + b"abc")),
        ("payload_hello_trailing", "payload_errors",
         raw_frame(1, MsgType.HELLO, struct.pack("<QBBHBBBx", 1, 1, 0, 0, 1, 1, 0) + b"\x01")),
    ]


def build_lines() -> list[str]:
    lines = [
        "# vitals-edge firmware_bridge test vectors - generated by make_vectors.py, do not edit.",
        "# V <name> <TYPE> <fields> hex=<wire>: both codecs must produce and accept these bytes.",
        "# R <name> expect=<counter> hex=<wire>: the streaming decoders must reject (count) these.",
    ]
    for name, msg in valid_messages():
        lines.append(f"V {name} {format_message(msg)} hex={encode_frame(msg).hex()}")
    for name, expect, wire in reject_frames():
        lines.append(f"R {name} expect={expect} hex={wire.hex()}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the file")
    parser.add_argument("--out", type=Path, default=VECTORS_PATH)
    args = parser.parse_args(argv)
    text = "\n".join(build_lines()) + "\n"
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("vectors up to date" if same else f"{args.out} is stale: regenerate it")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} lines to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
