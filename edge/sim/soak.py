"""The soak's virtual wearable: one recording streamed again and again on one stable link.

``python -m edge.sim.soak --record R --link PATH --hours H --speed X`` runs
:class:`~edge.sim.serial_device.VirtualSerialDevice` on ``R`` run after run
(each on a fresh pty behind the same symlink ``PATH``) until ``H`` hours of
stream have been sent, with the device's own fault injection (corrupt and
dropped SAMPLES frames) and, on a fraction of the runs, a disconnect in the
middle of the run followed by a re-plug. Every run end is a disconnect too:
the pty closes, the link disappears while the next run starts, and the next
run is a device that boots again (sample index and clock from zero).

It is a separate process so that the gateway under test (``tools/soak.py``)
measures its own memory, file descriptors and tasks only, and so that the
device has a core of its own. It reports on stdout, one JSON object a line:

* ``{"event": "progress", "sim_s": ..., "run": ...}`` about every second of
  wall time (stream seconds since the soak began, for scheduling faults);
* ``{"event": "run", ...}`` after each run: samples sent, faults per kind
  (frames and samples), whether the gateway acknowledged the end;
* ``{"event": "done", "sim_s": ..., "runs": ...}`` at the end.

Mid-run disconnects happen at a frame boundary *after* the gateway has
acknowledged everything sent so far (a STATUS with ACK_REQUESTED, the
protocol's own barrier, as at the end of a run). Closing a pty master
discards what the slave side has not read yet, so without the barrier a few
frames in flight would vanish with no trace on either side, and the sample
accounting of the soak could not be exact. A real unplug loses those bytes;
the gateway then reports them inside its disconnect gap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import IO, Any

import firmware_bridge as fb
from edge.sim.serial_device import StreamPlan, VirtualSerialDevice
from edge.sources.open import open_replay
from edge.types import Block, StreamKey

log = logging.getLogger(__name__)


class SoakDevice(VirtualSerialDevice):
    """A :class:`VirtualSerialDevice` with an acknowledged barrier before a mid-run
    disconnect, and the stream plan computed once for all runs (``plans``)."""

    def __init__(self, *args: Any, plans: dict[StreamKey, StreamPlan] | None = None,
                 barrier_timeout: float = 30.0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._cached_plans = plans
        self.barrier_timeout = barrier_timeout
        self.barrier_ok: bool | None = None  # None: no mid-run disconnect happened

    async def _scan(self) -> None:
        if self._cached_plans:
            self.plans = dict(self._cached_plans)
            return
        await super()._scan()

    async def _barrier(self) -> bool:
        """Everything written so far has been read by the gateway (it ACKed a later frame)."""
        await self._session()
        seq, frame = self._encode(self._status_msg(self._stream_t),
                                  flags=fb.Flags.ACK_REQUESTED)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[seq] = fut
        if not await self._write(frame):
            self._acks.pop(seq, None)
            return False
        try:
            await asyncio.wait_for(fut, self.barrier_timeout)
            return True
        except TimeoutError:
            self._acks.pop(seq, None)
            log.warning("soak device: no ACK before the disconnect; frames may be lost")
            return False

    async def _link_events(self, t: float) -> bool:
        if self._state == "connected" and self.disconnect_after is not None \
                and t >= self.disconnect_after and not self._disconnected:
            self.barrier_ok = await self._barrier()
        return await super()._link_events(t)


async def record_seconds(record: str | Path) -> float:
    """Length of the recording in seconds (its longest waveform stream)."""
    src = open_replay(record, speed=None)
    end: dict[StreamKey, float] = {}
    async with src:
        async for item in src:
            if isinstance(item, Block):
                end[item.key] = (item.first_index + item.n_samples) / item.fs
    if not end:
        raise ValueError(f"{record}: no waveform streams")
    return max(end.values())


def fault_summary(device: VirtualSerialDevice) -> dict[str, dict[str, int]]:
    """Faults per kind: frames (or merged windows for disconnects) and samples."""
    out: dict[str, dict[str, int]] = {}
    for f in device.faults:
        d = out.setdefault(f.kind, {"n": 0, "samples": 0})
        d["n"] += 1
        d["samples"] += f.end_index - f.start_index
    return out


async def run_loop(record: str | Path, link: str | Path, hours: float, speed: float | None,
                   *, seed: int = 0, corrupt: float = 1e-3, drop: float = 5e-4,
                   disconnect_prob: float = 0.3, reconnect_s: tuple[float, float] = (10, 120),
                   out: IO[str] = sys.stdout, max_runs: int | None = None) -> dict[str, Any]:
    """Run the device again and again until ``hours`` of stream have been sent."""
    rng = random.Random(seed)
    length = await record_seconds(record)
    target = hours * 3600.0
    sim_done = 0.0
    runs = 0
    plans: dict[StreamKey, StreamPlan] | None = None
    current: list[SoakDevice] = []

    def emit(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    async def progress() -> None:
        while True:
            t = current[0]._stream_t if current else 0.0
            emit({"event": "progress", "sim_s": round(sim_done + t, 3), "run": runs})
            await asyncio.sleep(1.0)

    reporter = asyncio.create_task(progress())
    try:
        while sim_done < target - 1e-6 and (max_runs is None or runs < max_runs):
            disconnect_after = reconnect_after = None
            # a mid-run unplug somewhere in the middle 80 % of the run, back after a while
            if rng.random() < disconnect_prob:
                disconnect_after = round(rng.uniform(0.1, 0.9) * length, 3)
                reconnect_after = round(rng.uniform(*reconnect_s), 3)
            dev = SoakDevice(record, speed=speed, link=link, corrupt=corrupt, drop=drop,
                             disconnect_after=disconnect_after, reconnect_after=reconnect_after,
                             seed=rng.randrange(2**32), plans=plans, final_ack_timeout=30.0)
            current[:] = [dev]
            t0 = time.monotonic()
            stats = await dev.run()
            plans = dev.plans
            sim_done += dev._stream_t
            current.clear()
            runs += 1
            emit({"event": "run", "run": runs, "stream_s": round(dev._stream_t, 3),
                  "wall_s": round(time.monotonic() - t0, 3), "samples_sent": stats.samples_sent,
                  "samples_frames": stats.samples_frames, "connects": stats.connects,
                  "welcomes": stats.welcomes, "hellos": stats.hellos,
                  "disconnect_after": disconnect_after, "reconnect_after": reconnect_after,
                  "barrier_ok": dev.barrier_ok, "finished_ok": dev.finished_ok,
                  "faults": fault_summary(dev), "sim_s": round(sim_done, 3)})
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    done = {"event": "done", "sim_s": round(sim_done, 3), "runs": runs}
    emit(done)
    return done


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m edge.sim.soak", description=__doc__.split("\n")[0])
    p.add_argument("--record", required=True, help="trace, WFDB record or CSV to stream")
    p.add_argument("--link", required=True, help="stable symlink to the current pty")
    p.add_argument("--hours", type=float, required=True, help="hours of stream to send")
    p.add_argument("--speed", type=float, default=100.0, help="x real time (0: unpaced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corrupt", type=float, default=1e-3)
    p.add_argument("--drop", type=float, default=5e-4)
    p.add_argument("--disconnect-prob", type=float, default=0.3,
                   help="fraction of runs with a mid-run disconnect and re-plug")
    p.add_argument("--reconnect-min", type=float, default=10.0,
                   help="shortest unplugged time (stream seconds)")
    p.add_argument("--reconnect-max", type=float, default=120.0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s device %(levelname)s %(message)s")
    asyncio.run(run_loop(a.record, a.link, a.hours, a.speed or None, seed=a.seed,
                         corrupt=a.corrupt, drop=a.drop, disconnect_prob=a.disconnect_prob,
                         reconnect_s=(a.reconnect_min, a.reconnect_max)))


if __name__ == "__main__":
    main()
