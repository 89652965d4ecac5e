"""The kill -9 test: a producer + sync engine process killed at random points.

Used by ``tests/test_sync_crash.py`` and ``tools/bench_sync.py``. A child process
(``python -m edge.sync.crashtest child ...``) stores a deterministic set of
episodes in an outbox (urgent ones first ``ongoing``, then ``ended`` under the same
id: two revisions) while a :class:`SyncEngine` uploads them to the test backend.
The parent kills it with SIGKILL at random moments, restarts it (it resumes from
the outbox), lets the last run finish, and counts on the backend: events lost,
events held more than once, events whose latest revision did not arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from edge.config import EdgeConfig, SyncConfig
from edge.store.outbox import Outbox
from edge.types import Episode, Priority, StreamKey

_NS = uuid.UUID("0b6c8f0e-93a4-4c1e-a1d5-2f1f6c9d7e55")
_PRIORITIES = (Priority.URGENT, Priority.WARNING, Priority.INFO)


def planned_episode(seed: int, i: int, status: str = "ended") -> Episode:
    """Event ``i`` of a run: the same id and content every time the producer restarts."""
    prio = _PRIORITIES[i % 3]
    onset = 1_700_000_000.0 + 60.0 * i
    return Episode(kind="asystole" if prio is Priority.URGENT else "tachycardia",
                   key=StreamKey("crash-wearable", "ecg"), onset=onset,
                   offset=onset + (0.0 if status == "ongoing" else 8.0), onset_index=i * 1000,
                   offset_index=i * 1000 + 2000, priority=prio, detector="crashtest",
                   detector_version="1", status=status,
                   id=str(uuid.uuid5(_NS, f"{seed}/{i}")))


def fast_sync(cfg: EdgeConfig, url: str) -> EdgeConfig:
    """Short delays so a test converges in seconds."""
    return replace(cfg, sync=replace(SyncConfig(), url=url, batch_events=20,
                                     backoff_initial_s=0.05, backoff_max_s=0.5,
                                     max_retry_after_s=1.0, breaker_failures=20,
                                     breaker_reset_s=0.3, poll_interval_s=0.05))


async def _child(outbox_path: str, url: str, n_events: int, seed: int) -> None:
    from edge.sync.engine import SyncEngine
    from edge.sync.transport import Uploader

    cfg = fast_sync(EdgeConfig(), url)
    with Outbox(outbox_path) as ob:
        async with Uploader(cfg) as up:
            engine = SyncEngine(ob, up, cfg)
            task = asyncio.create_task(engine.run())
            print("ready", flush=True)
            for i in range(n_events):
                ep = planned_episode(seed, i)
                stored = ob.get(ep.id)
                if stored is not None and stored.episode.status == "ended":
                    continue
                if ep.priority is Priority.URGENT and stored is None:
                    ob.put(planned_episode(seed, i, "ongoing"))
                    engine.wake()
                    await asyncio.sleep(0.004)
                ob.put(ep)
                engine.wake()
                await asyncio.sleep(0.002)
            while ob.stats()["pending"]:
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    print("done", flush=True)


@dataclass
class CrashReport:
    kills: int
    events: int
    lost: int
    duplicated: int
    stale_revision: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spawn(outbox: Path, url: str, n_events: int, seed: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge.sync.crashtest", "child", "--outbox", str(outbox),
         "--url", url, "--events", str(n_events), "--seed", str(seed)],
        stdout=subprocess.PIPE, text=True)


def _wait_line(proc: subprocess.Popen[str], timeout: float) -> str:
    got: list[str] = []
    t = threading.Thread(target=lambda: got.append(proc.stdout.readline()),  # type: ignore[union-attr]
                         daemon=True)
    t.start()
    t.join(timeout)
    return got[0].strip() if got else ""


def kill_test(workdir: str | Path, kills: int = 15, n_events: int = 150, seed: int = 1,
              max_delay_s: float = 1.2, final_timeout_s: float = 120.0,
              backend_kind: str = "own") -> CrashReport:
    """Kill the producer+sync child ``kills`` times at random points; count on the backend.

    ``backend_kind``: ``"own"`` (edge.sync.testserver) or ``"medplum"`` (Medplum's FHIR
    router under Node, tests/fhir_medplum).
    """
    from edge.sync.testserver import start_backend

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    outbox = work / "crash-outbox.sqlite3"
    rng = random.Random(seed)
    t0 = time.perf_counter()
    with start_backend(backend_kind, work) as backend:
        # lose some responses after commit: the resend must be absorbed by the server
        backend.faults({"drop": "after", "times": 3}, {"status": 503, "retry_after": 0})
        for _ in range(kills):
            proc = _spawn(outbox, backend.url, n_events, seed)
            try:
                _wait_line(proc, 30.0)
                time.sleep(rng.uniform(0.0, max_delay_s))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
            finally:
                proc.wait()
                if proc.stdout:
                    proc.stdout.close()
        proc = _spawn(outbox, backend.url, n_events, seed)
        try:
            proc.wait(timeout=final_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout:
                proc.stdout.close()
        if proc.returncode != 0:
            raise RuntimeError(f"final producer run exited with {proc.returncode}")
        seen: dict[str, list[int]] = {}
        for o in backend.observations():
            if o["system"] == "urn:vitals-edge:event":
                seen.setdefault(o["identifier"], []).append(int(o["revision"] or 0))
    with Outbox(outbox) as ob:
        final = {r.episode.id: r.revision for r in ob.events()}
    expected = [planned_episode(seed, i).id for i in range(n_events)]
    lost = sum(1 for e in expected if e not in seen)
    dup = sum(len(v) - 1 for v in seen.values() if len(v) > 1)
    stale = sum(1 for e in expected if e in seen and max(seen[e]) != final.get(e))
    return CrashReport(kills, n_events, lost, dup, stale, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m edge.sync.crashtest")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("child", help="producer + sync engine (killed by the parent)")
    c.add_argument("--outbox", required=True)
    c.add_argument("--url", required=True)
    c.add_argument("--events", type=int, default=150)
    c.add_argument("--seed", type=int, default=1)
    k = sub.add_parser("run", help="the whole kill -9 test")
    k.add_argument("--workdir", required=True)
    k.add_argument("--kills", type=int, default=15)
    k.add_argument("--events", type=int, default=150)
    k.add_argument("--seed", type=int, default=1)
    k.add_argument("--backend", choices=["own", "medplum"], default="own")
    a = p.parse_args(argv)
    if a.cmd == "child":
        asyncio.run(_child(a.outbox, a.url, a.events, a.seed))
    else:
        print(kill_test(a.workdir, a.kills, a.events, a.seed,
                        backend_kind=a.backend).to_dict())


if __name__ == "__main__":
    main()
