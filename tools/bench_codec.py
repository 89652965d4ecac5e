#!/usr/bin/env python3
"""Benchmark the firmware_bridge decoder on a gateway core.

Measures, for SAMPLES frames of an 8-channel 250 Hz stream (25 samples per
frame, int16 and int24):

* decoder throughput in samples/s (COBS + CRC-32C + header + NumPy unpack,
  through the streaming FrameDecoder fed 64 KiB chunks), against a baseline of
  a bare ``np.frombuffer`` (int16) / int24 unpack of the same payloads in the
  same run, and the ratio of the two;
* the fraction of one core an 8-channel 250 Hz stream needs (2000 samples/s
  divided by the throughput);
* error recovery: a single corrupted byte at a random position of a random
  frame - how many frames are lost, how many bytes are discarded until the
  decoder is back in sync, and what that is in stream time.

    python tools/bench_codec.py            # table
    python tools/bench_codec.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_bridge import FrameDecoder, SampleFormat, Samples, encode_frame  # noqa: E402
from firmware_bridge.messages import unpack_int24  # noqa: E402

CHANNELS = 8
RATE_HZ = 250
PER_FRAME = 25
STREAM_SAMPLES_PER_S = CHANNELS * RATE_HZ  # 2000
CHUNK = 65536


def make_frames(fmt: int, count: int, seed: int = 1) -> list[bytes]:
    """``count`` consecutive SAMPLES frames of ECG-like noise (realistic zero density)."""
    rng = np.random.default_rng(seed)
    amp = 2000 if fmt == SampleFormat.INT16 else 400_000
    t = np.arange(count * PER_FRAME) / RATE_HZ
    wave = amp * np.sin(2 * np.pi * 1.2 * t)[:, None] + rng.normal(0, amp / 20,
                                                                     (t.size, CHANNELS))
    data = np.round(wave).astype(np.int16 if fmt == SampleFormat.INT16 else np.int32)
    return [
        encode_frame(Samples(seq=i, timestamp_us=i * 100_000, stream_id=1,
                             first_sample_index=i * PER_FRAME, sample_format=fmt,
                             data=data[i * PER_FRAME : (i + 1) * PER_FRAME]))
        for i in range(count)
    ]


def best_of(repeats: int, fn) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_throughput(fmt: int, frames: int, repeats: int) -> dict[str, float]:
    wire_frames = make_frames(fmt, frames)
    stream = b"".join(wire_frames)
    chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
    samples = frames * PER_FRAME * CHANNELS

    def decode() -> None:
        dec = FrameDecoder()
        n = 0
        for c in chunks:
            n += len(dec.feed(c))
        assert n == frames and dec.stats.errors == 0

    # Baseline: the payload bytes alone, already unframed, unpacked the cheapest way.
    payloads = [Samples.encode_payload(_decode_one(f))[14:] for f in wire_frames]
    count = PER_FRAME * CHANNELS

    def baseline() -> None:
        if fmt == SampleFormat.INT16:
            for p in payloads:
                np.frombuffer(p, dtype="<i2").reshape(PER_FRAME, CHANNELS)
        else:
            for p in payloads:
                unpack_int24(p, count).reshape(PER_FRAME, CHANNELS)

    t_dec = best_of(repeats, decode)
    t_base = best_of(repeats, baseline)
    thr = samples / t_dec
    return {
        "frames": frames,
        "frame_bytes_on_wire": len(wire_frames[0]),
        "decoder_samples_per_s": thr,
        "decoder_us_per_frame": t_dec / frames * 1e6,
        "baseline_samples_per_s": samples / t_base,
        "decoder_over_baseline_time": t_dec / t_base,
        "core_fraction_8ch_250hz": STREAM_SAMPLES_PER_S / thr,
    }


def _decode_one(frame: bytes) -> Samples:
    (msg,) = FrameDecoder().feed(frame)
    assert isinstance(msg, Samples)
    return msg


def bench_recovery(fmt: int, trials: int, seed: int = 3) -> dict[str, float]:
    """Corrupt one byte (delimiters included) of a 40-frame stream, ``trials`` times."""
    rng = np.random.default_rng(seed)
    frames = make_frames(fmt, 40)
    stream = b"".join(frames)
    frame_len = len(frames[0])
    lost, discarded, times = [], [], []
    for _ in range(trials):
        pos = int(rng.integers(frame_len, len(stream) - frame_len))  # not the first/last frame
        bad = bytearray(stream)
        bad[pos] = (bad[pos] + int(rng.integers(1, 256))) % 256
        dec = FrameDecoder()
        t = time.perf_counter()
        got = dec.feed(bytes(bad))
        times.append(time.perf_counter() - t)
        lost.append(len(frames) - len(got))
        discarded.append(dec.stats.bytes_discarded)
    lost_a, disc_a = np.array(lost), np.array(discarded)
    stream_bytes_per_s = frame_len * RATE_HZ / PER_FRAME
    return {
        "trials": trials,
        "frames_lost_mean": float(lost_a.mean()),
        "frames_lost_max": int(lost_a.max()),
        "bytes_discarded_mean": float(disc_a.mean()),
        "bytes_discarded_max": int(disc_a.max()),
        "resync_stream_time_ms_max": float(disc_a.max() / stream_bytes_per_s * 1e3),
        "decode_40_frames_with_error_us_median": float(np.median(times) * 1e6),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Throughput and error recovery of the firmware_bridge frame decoder.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--frames", type=int, default=4000, help="SAMPLES frames per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best is reported")
    parser.add_argument("--trials", type=int, default=500, help="error-recovery trials")
    args = parser.parse_args(argv)

    result: dict[str, object] = {
        "machine": {"python": platform.python_version(), "cpu": platform.machine(),
                    "numpy": np.__version__},
        "stream": {"channels": CHANNELS, "rate_hz": RATE_HZ, "samples_per_frame": PER_FRAME},
    }
    for name, fmt in (("int16", SampleFormat.INT16), ("int24", SampleFormat.INT24)):
        result[name] = {
            "throughput": bench_throughput(fmt, args.frames, args.repeats),
            "recovery": bench_recovery(fmt, args.trials),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"8 ch x {RATE_HZ} Hz, {PER_FRAME} samples/frame; Python {platform.python_version()}"
          f" on {platform.machine()}")
    for name in ("int16", "int24"):
        thr = result[name]["throughput"]  # type: ignore[index]
        rec = result[name]["recovery"]  # type: ignore[index]
        print(f"\n[{name}] frame {thr['frame_bytes_on_wire']} B on the wire")
        print(f"  decoder   {thr['decoder_samples_per_s'] / 1e6:8.2f} M samples/s "
              f"({thr['decoder_us_per_frame']:.1f} us/frame)")
        print(f"  baseline  {thr['baseline_samples_per_s'] / 1e6:8.2f} M samples/s "
              f"(bare unpack of the payloads)")
        print(f"  ratio     {thr['decoder_over_baseline_time']:8.1f} x the baseline's time")
        print(f"  one 8-ch 250 Hz stream uses {thr['core_fraction_8ch_250hz'] * 100:.4f} % "
              f"of this core")
        print(f"  1 corrupt byte: frames lost mean {rec['frames_lost_mean']:.2f} "
              f"max {rec['frames_lost_max']}, bytes discarded mean "
              f"{rec['bytes_discarded_mean']:.0f} max {rec['bytes_discarded_max']}, "
              f"back in sync within {rec['resync_stream_time_ms_max']:.0f} ms of stream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
