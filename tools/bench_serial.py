"""Serial link figures: throughput and CPU of SerialSource over a pty, and error recovery.

Not a timed test: run it by hand on the target (a Raspberry Pi) and on a dev machine.

* throughput: an 8-channel 250 Hz int16 stream sent as fast as the pty takes it by
  ``edge simulate serial --fast`` in another process; samples/s delivered by SerialSource
  and this process's CPU time over that window (so the device's CPU is not counted);
* CPU at real time: the same stream at 1x for ``--realtime-s`` seconds: the fraction
  of one core this process (SerialSource, reading and decoding) uses;
* recovery: one corrupted byte in one SAMPLES frame at 1x: samples lost, and the time
  from the corrupt frame being rejected to the next good block being delivered.

    python tools/bench_serial.py [--json] [--seconds 120] [--realtime-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.sim.serial_device import VirtualSerialDevice  # noqa: E402
from edge.sources.serial import SerialSource  # noqa: E402
from edge.trace.format import TraceWriter  # noqa: E402
from edge.types import Block, ChannelSpec, StreamKey  # noqa: E402

FS, NCH = 250.0, 8


def make_trace(path: Path, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    key = StreamKey("bench", "ecg")
    chans = tuple(ChannelSpec(n, "mV") for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"))
    n = int(seconds * FS)
    sig = np.round(rng.standard_normal((n, NCH)) * 200) / 200
    with TraceWriter(path, {"title": "bench 8x250 Hz"}) as w:
        for seq, start in enumerate(range(0, n, 50)):
            w.write(Block(key, chans, FS, seq, start, start / FS, 0.0,
                          sig[start:start + 50].astype(np.float32)))
    return path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def read_all(port: str) -> tuple[int, float, float]:
    """Samples delivered, wall and CPU seconds from the first block to the end."""
    src = SerialSource(port, reconnect=False)
    n, t0, c0 = 0, 0.0, 0.0
    async with src:
        async for item in src:
            if isinstance(item, Block):
                if n == 0:
                    t0, c0 = time.perf_counter(), cpu()
                n += item.n_samples
    return n, time.perf_counter() - t0, cpu() - c0


def throughput(trace: Path, tmp: Path, speed: str | None) -> dict[str, float]:
    link = tmp / f"dev-{speed or 'fast'}"
    args = ["--fast"] if speed is None else ["--speed", speed]
    proc = subprocess.Popen([sys.executable, "-m", "edge", "simulate", "serial", "--trace",
                             str(trace), "--link", str(link), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = proc.stdout.readline().strip()  # type: ignore[union-attr]
        n, wall, cpu_s = asyncio.run(read_all(port))
        proc.wait(30)
    finally:
        proc.kill()
    return {"samples": n, "wall_s": round(wall, 3), "samples_per_s": round(n / wall),
            "x_realtime": round(n / wall / FS, 1), "cpu_fraction": round(cpu_s / wall, 4),
            "cpu_us_per_sample": round(cpu_s / n * 1e6, 3)}


def recovery(trace: Path, tmp: Path) -> dict[str, float]:
    device = VirtualSerialDevice(trace, speed=1.0, link=tmp / "dev-rec", corrupt_frames={8})
    threading.Thread(target=lambda: asyncio.run(device.run()), daemon=True).start()
    while device.path is None:
        time.sleep(0.01)

    async def go() -> dict[str, float]:
        src = SerialSource(device.port(), reconnect=False)
        t_err: float | None = None
        feed = src.feed

        def timed_feed(data: bytes) -> None:
            nonlocal t_err
            feed(data)
            if t_err is None and src.decoder.stats.errors:
                t_err = time.perf_counter()

        src.feed = timed_feed  # type: ignore[method-assign]
        out: dict[str, float] = {}
        async with src:
            async for item in src:
                if t_err is not None and isinstance(item, Block) and "recovery_ms" not in out:
                    out["recovery_ms"] = round((time.perf_counter() - t_err) * 1e3, 1)
                    src.stop()
                elif not isinstance(item, Block):
                    out["samples_lost"] = (item.end_index or 0) - item.start_index
        out["frame_period_ms"] = 50 / FS * 1e3
        out["bytes_discarded"] = src.decoder.stats.bytes_discarded
        out["decode_errors"] = src.decoder.stats.errors
        return out

    return asyncio.run(go())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--seconds", type=float, default=120.0, help="stream length (fast run)")
    ap.add_argument("--realtime-s", type=float, default=10.0, help="length of the 1x run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fast = throughput(make_trace(tmp / "fast.vetrace", args.seconds), tmp, None)
        real = throughput(make_trace(tmp / "rt.vetrace", args.realtime_s), tmp, "1")
        rec = recovery(make_trace(tmp / "rec.vetrace", 5.0), tmp)
    out = {"stream": "8 channels x 250 Hz int16, 50 samples (0.2 s) per frame; samples = "
                     "sample instants (8 values each)",
           "fast": fast, "realtime_1x": real, "recovery_after_corrupt_byte": rec}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['stream']}")
    print(f"throughput: {fast['samples_per_s']} samples/s ({fast['x_realtime']} x real time), "
          f"{fast['cpu_us_per_sample']} us CPU per sample")
    print(f"CPU at 1x: {real['cpu_fraction']:.2%} of a core")
    print(f"corrupt byte: {rec['samples_lost']} samples lost (one frame), next good block "
          f"{rec['recovery_ms']} ms later (frame period {rec['frame_period_ms']} ms)")


if __name__ == "__main__":
    main()
