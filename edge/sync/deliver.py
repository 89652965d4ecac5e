"""Deliver everything in an outbox once, and check the backend holds each event once.

For ``edge demo`` (after the pipeline has finished) and ``edge outbox flush``::

    with start_test_backend(tmp / "backend.sqlite3") as backend:
        report = await deliver_all(outbox_path, backend.url, cfg)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from edge.config import EdgeConfig
from edge.errors import SyncError, TransientSyncError
from edge.store.outbox import Outbox
from edge.sync.engine import Backoff, SyncEngine
from edge.sync.transport import Uploader


@dataclass
class DeliveryReport:
    delivered: int  # event revisions delivered in this run
    bundles: int  # transaction Bundles sent
    pending: int  # left undelivered (0 unless the backend kept failing)
    failed: int  # parked: the backend refused their content
    checked: int  # events looked up on the backend afterwards (0 when verify=False)
    missing: int  # of those, not found
    duplicates: int  # of those, found more than once (must be 0)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def deliver_all(outbox_path: str | Path, backend_url: str, cfg: EdgeConfig, *,
                      attempts: int = 8, verify: bool = True) -> DeliveryReport:
    """Sync the outbox to ``backend_url`` (bounded retries), then count each event there."""
    cfg = replace(cfg, sync=replace(cfg.sync, url=backend_url))
    t0 = time.perf_counter()
    delivered = bundles = 0
    with Outbox(outbox_path) as outbox:
        async with Uploader(cfg) as up:
            engine = SyncEngine(outbox, up, cfg)
            backoff = Backoff(replace(cfg.sync, backoff_max_s=min(cfg.sync.backoff_max_s, 5.0)))
            for attempt in range(attempts):
                try:
                    rep = await engine.sync_once()
                    delivered += rep.delivered
                    bundles += rep.bundles
                    break
                except TransientSyncError as exc:
                    if attempt == attempts - 1:
                        raise
                    await asyncio.sleep(backoff.next_delay(
                        min(exc.retry_after, 5.0) if exc.retry_after is not None else None))
        st = outbox.stats()
        ids = [r.episode.id for r in outbox.events() if not r.pending]
    checked = missing = duplicates = 0
    if verify and ids:
        counts = await count_on_backend(ids, cfg)
        checked = len(counts)
        missing = sum(1 for n in counts.values() if n == 0)
        duplicates = sum(n - 1 for n in counts.values() if n > 1)
    return DeliveryReport(delivered, bundles, st["pending"], st["failed"], checked, missing,
                          duplicates, time.perf_counter() - t0)


async def count_on_backend(event_ids: list[str], cfg: EdgeConfig) -> dict[str, int]:
    """How many Observations the backend holds per event id (a standard FHIR search)."""
    up = Uploader(cfg)
    out: dict[str, int] = {}
    async with httpx.AsyncClient(auth=up._auth, verify=up._verify, timeout=30.0) as client:
        for eid in event_ids:
            try:
                r = await client.get(f"{up.url}/Observation", params={
                    "identifier": f"{cfg.fhir.event_identifier_system}|{eid}",
                    "_summary": "count"})
                r.raise_for_status()
            except httpx.HTTPError as exc:
                raise SyncError(f"cannot check event {eid} on the backend "
                                f"({type(exc).__name__})") from exc
            out[eid] = int(r.json().get("total", 0))
    return out
