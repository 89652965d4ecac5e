"""Sync policy: batches, backoff with jitter, Retry-After, circuit breaker, urgent first.

``SyncEngine(outbox, uploader, cfg)`` drains the outbox into the backend:

* ``await engine.sync_once()`` delivers everything pending now, batch by batch, each
  batch re-reading the queue (so an urgent event stored meanwhile goes next); it
  raises the first :class:`~edge.errors.SyncError` that stops it;
* ``await engine.run()`` is the long-running loop: on failure it waits (exponential
  backoff with full jitter, or the server's ``Retry-After``), opens the circuit
  breaker after ``breaker_failures`` failures in a row (then one single-event probe
  per ``breaker_reset_s``), and stops cleanly when cancelled;
* ``engine.status()`` gives queue depth, oldest pending, lag, last success and the
  error counters (also kept in the outbox, so ``edge outbox status`` in another
  process sees them).

Delivery is marked in the outbox only after the transaction-response arrived; a
crash in between resends the same revision, which the backend's conditional
create/update absorbs. Restarting resumes where it stopped: the outbox is the state.
A bundle the backend refuses is split until the refused event is isolated; that
event is parked (``edge outbox list --failed``) so it never blocks the queue. When
both halves of a refused bundle are accepted, the bundle was too big for this server
(Medplum, for one, refuses a transaction of more than 8 conditional entries): the
engine sends at most that many events per bundle from then on and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from edge.config import EdgeConfig, SyncConfig
from edge.errors import AuthError, BundleRejectedError, SyncError, TransientSyncError
from edge.store.outbox import Evidence, Outbox, StoredEvent
from edge.sync.fhir import BundlePlan, transaction_bundle
from edge.sync.transport import Uploader

log = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with jitter ("full jitter" at jitter=1.0), honouring Retry-After."""

    def __init__(self, cfg: SyncConfig, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.failures = 0
        self._rng = rng or random.Random()

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        self.failures += 1
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cfg.max_retry_after_s)
        cap = min(self.cfg.backoff_max_s,
                  self.cfg.backoff_initial_s * 2.0 ** (self.failures - 1))
        j = min(max(self.cfg.backoff_jitter, 0.0), 1.0)
        return cap * (1.0 - j) + self._rng.uniform(0.0, cap * j)


class CircuitBreaker:
    """closed -> (N failures) -> open -> (reset time) -> half-open -> one probe -> closed/open."""

    def __init__(self, failures: int, reset_s: float) -> None:
        self.threshold = max(1, failures)
        self.reset_s = reset_s
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0

    def allow(self, now: float) -> bool:
        if self.state == "open" and now - self.opened_at >= self.reset_s:
            self.state = "half-open"
        return self.state != "open"

    def wait_s(self, now: float) -> float:
        return max(0.0, self.opened_at + self.reset_s - now) if self.state == "open" else 0.0

    def record_success(self) -> None:
        if self.state != "closed":
            log.info("sync: backend reachable again, circuit breaker closed")
        self.state, self.failures = "closed", 0

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.threshold:
            if self.state != "open":
                log.warning("sync: circuit breaker open after %d failed upload(s); "
                            "probing every %.0f s", self.failures, self.reset_s)
            self.state, self.opened_at = "open", now


@dataclass
class SyncReport:
    delivered: int = 0
    bundles: int = 0
    parked: int = 0
    seconds: float = 0.0


@dataclass
class SyncStatus:
    queue_depth: int
    failed: int
    pending_by_priority: dict[str, int]
    oldest_pending: float | None
    lag_s: float
    last_success: float | None
    last_attempt: float | None
    last_error: dict[str, Any] | None
    errors: dict[str, int]
    breaker: str
    delivered_total: int
    outbox_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Counters:
    delivered: int = 0
    bundles: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {
        "transient": 0, "retry_after": 0, "auth": 0, "rejected": 0, "mapping": 0})


class SyncEngine:
    def __init__(self, outbox: Outbox, uploader: Uploader, cfg: EdgeConfig, *,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.outbox = outbox
        self.uploader = uploader
        self.cfg = cfg
        self.backoff = Backoff(cfg.sync, rng)
        self.breaker = CircuitBreaker(cfg.sync.breaker_failures, cfg.sync.breaker_reset_s)
        self._clock = clock
        self._wake = asyncio.Event()
        meta = outbox.meta()
        self._c = _Counters(delivered=int(meta.get("delivered_total", 0)),
                            bundles=int(meta.get("bundles_total", 0)))
        self._c.errors.update(meta.get("errors", {}))
        self.batch_limit: int | None = None  # learned: the most events this server takes

    def wake(self) -> None:
        """Start a sync now (the pipeline calls this after storing an episode)."""
        self._wake.set()

    # -- one pass ---------------------------------------------------------------------------

    async def sync_once(self, max_events: int | None = None) -> SyncReport:
        """Deliver what is pending now (at most ``max_events``); raise on the first failure."""
        t0 = time.perf_counter()
        report = SyncReport()
        batch_n = self.cfg.sync.batch_events if max_events is None else max(1, min(
            max_events, self.cfg.sync.batch_events))
        while max_events is None or report.delivered + report.parked < max_events:
            rows = self.outbox.pending(limit=min(batch_n, self.batch_limit or batch_n))
            if not rows:
                break
            self.outbox.set_meta(last_attempt=self._clock())
            try:
                await self._deliver(rows, report)
            except SyncError as exc:
                self._record_error(exc)
                raise
            self.outbox.set_meta(last_success=self._clock(), delivered_total=self._c.delivered,
                                 bundles_total=self._c.bundles)
        keep = self.cfg.store.keep_delivered_s
        if keep > 0 and report.delivered:
            self.outbox.delete_delivered_before(self._clock() - keep)
        report.seconds = time.perf_counter() - t0
        return report

    async def _deliver(self, rows: list[StoredEvent], report: SyncReport) -> None:
        evidence: dict[str, Evidence] = {}
        if self.cfg.fhir.send_evidence:
            for r in rows:
                ev = self.outbox.evidence(r.episode.id)
                if ev is not None:
                    evidence[r.episode.id] = ev
        plan: BundlePlan | None = None
        try:
            plan = transaction_bundle([(r.episode, r.revision) for r in rows], self.cfg.fhir,
                                      evidence)
            good = rows
        except (ValidationError, ValueError, KeyError):
            # a mapping failure is a bug in one event: park that one, keep the rest going
            good = []
            for r in rows:
                try:
                    transaction_bundle([(r.episode, r.revision)], self.cfg.fhir, evidence)
                    good.append(r)
                except (ValidationError, ValueError, KeyError) as exc:
                    self._c.errors["mapping"] += 1
                    self.outbox.mark_failed(r.episode.id, r.revision,
                                            f"mapping failed ({type(exc).__name__})")
                    log.error("sync: event %s revision %d cannot be mapped to FHIR (%s); "
                              "parked", r.episode.id, r.revision, type(exc).__name__)
                    report.parked += 1
        if good:
            await self._send(good, evidence, report, plan)

    async def _send(self, rows: list[StoredEvent], evidence: dict[str, Evidence],
                    report: SyncReport, plan: BundlePlan | None = None) -> None:
        if plan is None:
            plan = transaction_bundle([(r.episode, r.revision) for r in rows], self.cfg.fhir,
                                      evidence)
        try:
            await self.uploader.send(plan.bundle)
        except BundleRejectedError as exc:
            if len(rows) > 1:  # isolate the refused event(s)
                mid = len(rows) // 2
                parked = report.parked
                await self._send(rows[:mid], evidence, report)
                await self._send(rows[mid:], evidence, report)
                if report.parked == parked:  # both halves taken: the bundle was too big
                    limit = len(rows) - mid
                    if self.batch_limit is None or limit < self.batch_limit:
                        self.batch_limit = limit
                        log.warning("sync: the backend refused a bundle of %d events but took "
                                    "its halves; sending at most %d per bundle from now on "
                                    "(HTTP %d)", len(rows), limit, exc.status)
                return
            r = rows[0]
            self._c.errors["rejected"] += 1
            self.outbox.mark_failed(r.episode.id, r.revision, f"HTTP {exc.status}: {exc}")
            log.error("sync: backend refused event %s revision %d (HTTP %d); parked until "
                      "`edge outbox flush`", r.episode.id, r.revision, exc.status)
            report.parked += 1
            self._save_counters()
            return
        self.outbox.mark_many_synced(plan.events)
        self._c.delivered += len(plan.events)
        self._c.bundles += 1
        report.delivered += len(plan.events)
        report.bundles += 1

    def _record_error(self, exc: SyncError) -> None:
        if isinstance(exc, TransientSyncError):
            self._c.errors["retry_after" if exc.retry_after is not None else "transient"] += 1
        elif isinstance(exc, AuthError):
            self._c.errors["auth"] += 1
        with contextlib.suppress(SyncError, Exception):
            self.outbox.set_meta(last_error={"time": self._clock(), "type": type(exc).__name__,
                                             "message": str(exc)})
            self._save_counters()

    def _save_counters(self) -> None:
        self.outbox.set_meta(errors=self._c.errors)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Sync until cancelled. Never raises a SyncError: it waits and tries again."""
        while True:
            now = self._clock()
            if not self.breaker.allow(now):
                await self._sleep(self.breaker.wait_s(now), wakeable=False)
                continue
            probe = self.breaker.state == "half-open"
            try:
                await self.sync_once(max_events=1 if probe else None)
            except SyncError as exc:
                self.breaker.record_failure(self._clock())
                retry_after = getattr(exc, "retry_after", None)
                delay = self.backoff.next_delay(retry_after)
                log.warning("sync: upload failed (%s); retrying in %.1f s", exc, delay)
                await self._sleep(delay, wakeable=False)
                continue
            self.breaker.record_success()
            self.backoff.reset()
            if probe:
                continue  # the probe went through: drain the rest at once
            await self._sleep(self.cfg.sync.poll_interval_s, wakeable=True)

    async def _sleep(self, seconds: float, wakeable: bool) -> None:
        if not wakeable:
            await asyncio.sleep(seconds)
            return
        self._wake.clear()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
        # cancellation that arrives together with the wake-up (the daemon wakes the
        # engine for the last episodes and cancels it in the same loop iteration).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def status(self) -> SyncStatus:
        return sync_status(self.outbox, breaker=self.breaker.state, now=self._clock())


def sync_status(outbox: Outbox, breaker: str = "unknown", now: float | None = None) -> SyncStatus:
    """Status from the outbox alone (what ``edge outbox status`` shows from another process)."""
    now = time.time() if now is None else now
    st = outbox.stats()
    meta = outbox.meta()
    oldest = st["oldest_pending_created"]
    return SyncStatus(
        queue_depth=st["pending"], failed=st["failed"],
        pending_by_priority=st["pending_by_priority"], oldest_pending=oldest,
        lag_s=max(0.0, now - oldest) if oldest is not None else 0.0,
        last_success=meta.get("last_success"), last_attempt=meta.get("last_attempt"),
        last_error=meta.get("last_error"), errors=dict(meta.get("errors", {})),
        breaker=breaker, delivered_total=int(meta.get("delivered_total", 0)),
        outbox_bytes=st["size_bytes"])
