"""Benchmark the outbox and the clinical sync against a loopback FHIR backend.

Figures: outbox writes per second (synchronous=FULL, and NORMAL as a baseline ratio);
sync throughput to the backend (events/s); delivery after a simulated 24 h outage
(all events, urgent first, order checked on the server); the kill -9 result.
``--backend medplum`` runs the sync figures against Medplum's FHIR router under Node
(tests/fhir_medplum; `npm ci` there first) instead of this project's test server.

    python tools/bench_sync.py [--json] [--events N] [--kills K] [--outage-rate PER_HOUR]
                               [--backend own|medplum]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.config import EdgeConfig
from edge.errors import TransientSyncError
from edge.store.outbox import Outbox
from edge.sync.crashtest import fast_sync, kill_test
from edge.sync.engine import SyncEngine
from edge.sync.testserver import start_backend
from edge.sync.transport import Uploader
from edge.types import Episode, Priority, StreamKey, VitalKind, VitalSummary


def episode(i: int, onset: float, priority: Priority) -> Episode:
    return Episode(kind="tachycardia", key=StreamKey("bench-wearable", "ecg"), onset=onset,
                   offset=onset + 30.0, onset_index=i * 1000, offset_index=i * 1000 + 9000,
                   priority=priority, detector="rate_rules", detector_version="1.0.0",
                   summary=VitalSummary(VitalKind.HEART_RATE, "/min", 121.0, 150.0, 133.0),
                   details={"limit_bpm": 120.0})


def bench_writes(tmp: Path, n: int) -> dict[str, float]:
    out = {}
    for mode in ("FULL", "NORMAL"):
        with Outbox(tmp / f"w-{mode}.sqlite3", synchronous=mode) as ob:
            eps = [episode(i, 1.7e9 + i, Priority.WARNING) for i in range(n)]
            t0 = time.perf_counter()
            for e in eps:
                ob.put(e)
            out[mode] = n / (time.perf_counter() - t0)
    return {"writes_per_s_full": round(out["FULL"], 1),
            "writes_per_s_normal": round(out["NORMAL"], 1),
            "full_over_normal": round(out["FULL"] / out["NORMAL"], 3)}


async def _drain(ob: Outbox, cfg: EdgeConfig) -> tuple[int, int, float]:
    async with Uploader(cfg) as up:
        engine = SyncEngine(ob, up, cfg)
        t0 = time.perf_counter()
        rep = await engine.sync_once()
        return rep.delivered, rep.bundles, time.perf_counter() - t0


async def _drain_all(ob: Outbox, cfg: EdgeConfig) -> tuple[int, int, float, int | None]:
    async with Uploader(cfg) as up:
        engine = SyncEngine(ob, up, cfg)
        t0 = time.perf_counter()
        rep = await engine.sync_once()
        return rep.delivered, rep.bundles, time.perf_counter() - t0, engine.batch_limit


def bench_throughput(tmp: Path, n: int, backend: str = "own") -> dict[str, Any]:
    with start_backend(backend, tmp) as be:
        cfg = fast_sync(EdgeConfig(), be.url)
        cfg = replace(cfg, sync=replace(cfg.sync, batch_events=EdgeConfig().sync.batch_events))
        with Outbox(tmp / "tp.sqlite3") as ob:
            for i in range(n):
                ob.put(episode(i, 1.7e9 + i, Priority.WARNING))
            delivered, bundles, secs, limit = asyncio.run(_drain_all(ob, cfg))
    return {"backend": backend, "events": delivered, "bundles": bundles,
            "seconds": round(secs, 2), "events_per_s": round(delivered / secs, 1),
            "batch_events": cfg.sync.batch_events, "learned_batch_limit": limit}


def bench_outage(tmp: Path, rate_per_hour: float, seed: int = 3,
                 backend: str = "own") -> dict[str, Any]:
    rng = random.Random(seed)
    n = int(24 * rate_per_hour)
    prios = rng.choices([Priority.URGENT, Priority.WARNING, Priority.INFO], [1, 3, 6], k=n)
    with start_backend(backend, tmp) as be:
        cfg = fast_sync(EdgeConfig(), be.url)
        cfg = replace(cfg, sync=replace(cfg.sync, batch_events=EdgeConfig().sync.batch_events))
        be.faults(down=True)
        with Outbox(tmp / "outage.sqlite3") as ob:
            start = 1.7e9
            for i, p in enumerate(prios):  # 24 h of episodes, queued while the backend is down
                ob.put(episode(i, start + i * 3600.0 / rate_per_hour, p))
            failed_attempts = 0
            for _ in range(3):
                try:
                    asyncio.run(_drain(ob, cfg))
                except TransientSyncError:
                    failed_attempts += 1
            queued = ob.stats()["pending"]
            be.clear_faults()
            delivered, bundles, secs = asyncio.run(_drain(ob, cfg))
        obs = [o for o in be.observations() if o["system"] == "urn:vitals-edge:event"]
    rank = {"urgent": 0, "warning": 1, "info": 2}
    arrived = [rank[o["priority"]] for o in sorted(obs, key=lambda o: o["seq"])]
    ids = [o["identifier"] for o in obs]
    return {"hours": 24, "rate_per_hour": rate_per_hour, "queued": queued,
            "urgent": prios.count(Priority.URGENT), "failed_attempts_during_outage":
            failed_attempts, "delivered": delivered, "bundles": bundles,
            "seconds_to_deliver": round(secs, 2), "on_server": len(obs),
            "duplicates": len(ids) - len(set(ids)),
            "urgent_first": arrived == sorted(arrived)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--writes", type=int, default=2000, help="outbox writes to time")
    ap.add_argument("--events", type=int, default=2000, help="events for the throughput run")
    ap.add_argument("--outage-rate", type=float, default=30.0,
                    help="episodes per hour during the simulated 24 h outage")
    ap.add_argument("--kills", type=int, default=100, help="kill -9 points (0 = skip)")
    ap.add_argument("--kill-events", type=int, default=300)
    ap.add_argument("--backend", choices=["own", "medplum"], default="own",
                    help="FHIR server: this project's test server or Medplum's router (Node)")
    a = ap.parse_args()
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res["outbox_writes"] = bench_writes(tmp, a.writes)
        res["sync_throughput"] = bench_throughput(tmp, a.events, a.backend)
        res["outage_24h"] = bench_outage(tmp, a.outage_rate, backend=a.backend)
        if a.kills:
            res["kill_9"] = {"backend": a.backend, **kill_test(
                tmp / "kill", kills=a.kills, n_events=a.kill_events, seed=11,
                backend_kind=a.backend).to_dict()}
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for section, figures in res.items():
            print(section)
            for k, v in figures.items():
                print(f"  {k:32} {v}")


if __name__ == "__main__":
    main()
