"""The gateway daemon: sources from config -> pipeline -> outbox, until told to stop.

A tree of tasks with one owner: the pipeline (one task per source plus the
processing task), and beside it the services (metrics endpoint, systemd
watchdog and status). SIGTERM and SIGINT stop it gracefully: sources close,
everything received is processed, processors flush, the outbox is closed,
systemd is told ``STOPPING=1``.

Liveness: under systemd with ``WatchdogSec=``, the watchdog is pinged only
while the pipeline makes progress; items waiting with none processed for
``ops.stall_s`` withhold the ping (one error line), so systemd restarts a
stalled daemon. A blocked event loop cannot ping at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import CollectorRegistry

from edge.app import load_models, processor_factory
from edge.clock import Clock, MonotonicClock
from edge.config import EdgeConfig, SourceConfig, load_config
from edge.errors import ConfigError
from edge.ops.metrics import EdgeCollector, MetricsServer
from edge.ops.sdnotify import Notifier, watchdog_interval_s
from edge.pipeline import Pipeline, PipelineStats
from edge.sources.base import Source
from edge.sources.open import open_replay
from edge.sources.replay import RecordingSource, TraceSource
from edge.store.outbox import Outbox, OutboxSink

log = logging.getLogger(__name__)


def build_source(cfg: SourceConfig, index: int) -> Source:
    """The source a ``[[sources]]`` table describes."""
    where = f"sources[{index}]"
    if cfg.type == "replay":
        if not cfg.path:
            raise ConfigError(f"{where}: a replay source needs 'path'")
        return open_replay(cfg.path, fs=cfg.fs or None, speed=cfg.speed, loop=cfg.loop,
                           start_wall=time.time(), device=cfg.device or f"replay{index}")
    if cfg.type in ("serial", "ble"):
        from edge.sources import registry

        return registry.build(cfg, index)
    raise ConfigError(f"{where}: unknown source type {cfg.type!r} (serial, ble or replay)")


@dataclass
class DaemonResult:
    stats: PipelineStats
    episodes_stored: int
    store_failures: int


class Daemon:
    """Runs the configured sources through the pipeline into the outbox."""

    def __init__(self, config: EdgeConfig, notifier: Notifier | None = None,
                 config_path: str | None = None) -> None:
        if not config.sources:
            raise ConfigError("no [[sources]] configured: nothing to monitor")
        self.web_token: str | None = None
        if config.web.listen and config.web.token_file:
            from edge.web.auth import read_token

            self.web_token = read_token(config.web.token_file)  # refused at start if unsafe
        self.config = config
        self.sources = [build_source(s, i) for i, s in enumerate(config.sources)]
        replay_clock = next((s.clock for s in self.sources
                             if isinstance(s, RecordingSource | TraceSource)), None)
        self.clock: Clock = replay_clock or MonotonicClock()
        self.notifier = notifier or Notifier()
        self.models = load_models(config)
        self.pipeline = Pipeline(processor_factory(config, self.models, self._put_evidence), [],
                                 config.pipeline,
                                 self.clock)
        self.metrics_port: int | None = None
        self.config_path = config_path
        self.reloads = 0
        self.sync_engine: Any = None
        self._outbox: Outbox | None = None
        self.web_port: int | None = None

    def reload(self) -> None:
        """SIGHUP: re-read the config file and apply new thresholds without touching streams."""
        if self.config_path is None:
            log.warning("reload requested, but the daemon was not started from a file")
            return
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        if new.sources != self.config.sources:
            log.warning("sources changed in the config: they apply after a restart")
        applied = 0
        for proc in self.pipeline.processors():
            reconfigure = getattr(proc, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(new)
                applied += 1
        for handle in self.models.handles:
            handle.request_reload()  # verified before swapped in; the old one stays on failure
        self.config = replace(new, sources=self.config.sources)
        self.reloads += 1
        log.info("configuration reloaded (%d processors updated)", applied)

    def _put_evidence(self, event_id: str, fs: float, unit: str, samples: Any) -> None:
        if self._outbox is not None:
            self._outbox.put_evidence(event_id, fs, unit, samples)

    def _wake_sync(self) -> None:
        if self.sync_engine is not None:
            self.sync_engine.wake()

    def _sync_gauges(self, outbox: Outbox) -> dict[str, float]:
        from edge.sync import sync_status

        st = sync_status(outbox)
        return {"edge_outbox_pending": float(st.queue_depth),
                "edge_outbox_failed": float(st.failed),
                "edge_sync_lag_seconds": float(st.lag_s),
                "edge_sync_delivered": float(st.delivered_total)}

    def stop(self) -> None:
        log.info("stop requested: draining the pipeline")
        self.notifier.stopping()
        self.pipeline.request_stop()

    def _status_line(self) -> str:
        st = self.pipeline.stats
        pending = self._outbox.counts()["pending"] if self._outbox is not None else 0
        return (f"{len(self.sources)} source(s), {st.blocks} blocks, "
                f"{sum(st.episodes.values())} episodes, {pending} awaiting sync")

    async def _supervise(self) -> None:
        """Watchdog pings while the pipeline makes progress; periodic STATUS."""
        ping = watchdog_interval_s()
        period = min(x for x in (ping, self.config.ops.status_every_s) if x)
        last_items, last_progress = -1, time.monotonic()
        last_status = 0.0
        stalled = False
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            items, depth = self.pipeline.stats.items, self.pipeline.queue_depth()
            if items != last_items or depth == 0:
                last_items, last_progress = items, now
                if stalled:
                    log.warning("pipeline is processing again")
                stalled = False
            elif now - last_progress >= self.config.ops.stall_s and not stalled:
                stalled = True
                log.error("pipeline stalled: %d items queued, none processed for %.0f s; "
                          "withholding the watchdog ping", depth, now - last_progress)
            if ping and not stalled:
                self.notifier.watchdog()
            with contextlib.suppress(Exception):  # a failed reload keeps the old model, logged
                self.models.check_reload()
            if now - last_status >= self.config.ops.status_every_s:
                self.notifier.status(self._status_line())
                last_status = now

    async def _sync(self, outbox: Outbox) -> None:
        """Deliver stored episodes to the backend until cancelled (never raises SyncError)."""
        from edge.sync import SyncEngine, Uploader

        async with Uploader(self.config) as uploader:
            self.sync_engine = SyncEngine(outbox, uploader, self.config)
            await self.sync_engine.run()

    async def _final_sync(self, outbox: Outbox, timeout_s: float) -> None:
        """On shutdown, one last attempt to deliver what is pending (bounded in time)."""
        from edge.errors import SyncError
        from edge.sync import SyncEngine, Uploader

        try:
            async with asyncio.timeout(timeout_s), Uploader(self.config) as uploader:
                report = await SyncEngine(outbox, uploader, self.config).sync_once()
                log.info("final sync delivered %d event(s)", report.delivered)
        except (TimeoutError, SyncError) as exc:
            log.warning("final sync incomplete (%s); events stay in the outbox",
                        type(exc).__name__)

    async def _start_web(self, stack: contextlib.AsyncExitStack, outbox: Outbox) -> None:
        """The read-only web view ([web] listen): a live tap on the pipeline, and its server.

        aiohttp is imported here only, so a daemon without [web] never loads it.
        A port that cannot be bound is one error line; monitoring goes on.
        """
        from edge.web.evidence import EvidenceView, annotate
        from edge.web.live import LiveView
        from edge.web.server import WebServer
        from edge.web.status import build_status

        live = LiveView(self.config.web)
        pairs = list(zip(self.config.sources, self.sources, strict=True))
        live.status_fn = lambda: build_status(self.config, pairs, self.pipeline, outbox, live)

        one_at_a_time = asyncio.Semaphore(1)

        async def evidence_of(event_id: str) -> EvidenceView | None:
            row, ev = outbox.get(event_id), outbox.evidence(event_id)
            if row is None or ev is None:
                return None
            # beats are re-detected in a worker thread (its own event loop), one snippet at a
            # time, so the live pipeline's loop stays responsive while a page asks
            async with one_at_a_time:
                return await asyncio.to_thread(
                    asyncio.run, annotate(row.episode, ev, self.config, self.models))

        try:
            server = await stack.enter_async_context(
                WebServer(self.config, live, outbox, evidence_of, self.web_token))
            self.web_port = server.port
        except OSError as exc:
            log.error("web view off: cannot listen on %s (%s); monitoring continues",
                      self.config.web.listen, exc.strerror or exc)
            return
        # tapped only once served (its ticker empties the buffers the tap fills)
        self.pipeline.sinks.append(live)  # after the outbox sink: an episode shown is stored
        previous = self.pipeline.on_block

        def on_block(block: Any) -> None:
            live.on_block(block)
            if previous is not None:
                previous(block)

        self.pipeline.on_block = on_block

    async def run(self) -> DaemonResult:
        loop = asyncio.get_running_loop()
        ops = self.config.ops
        with Outbox(self.config.store.path) as outbox:
            self._outbox = outbox
            sink = OutboxSink(outbox, on_stored=self._wake_sync)
            self.pipeline.sinks.append(sink)
            registry = CollectorRegistry()
            registry.register(EdgeCollector(
                self.pipeline, self.sources, lambda: self._sync_gauges(outbox),
                models=lambda: [h.model for h in self.models.handles]))
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if ops.metrics_port >= 0:
                        try:
                            server = await stack.enter_async_context(
                                MetricsServer(registry, ops.metrics_host, ops.metrics_port))
                            self.metrics_port = server.port
                        except OSError as exc:
                            # metrics are for the operator; monitoring the patient goes on
                            log.error("metrics endpoint off: cannot listen on %s:%d (%s); "
                                      "monitoring continues", ops.metrics_host,
                                      ops.metrics_port, exc.strerror or exc)
                    if self.config.web.listen:
                        await self._start_web(stack, outbox)
                    async with asyncio.TaskGroup() as tg:
                        supervisor = tg.create_task(self._supervise(), name="supervisor")
                        syncer = (tg.create_task(self._sync(outbox), name="sync")
                                  if self.config.sync.url else None)
                        log.info("monitoring %d source(s)", len(self.sources))
                        self.notifier.ready(self._status_line())
                        stats = await self.pipeline.run(*self.sources)
                        supervisor.cancel()
                        if syncer is not None:
                            syncer.cancel()
                    if self.config.sync.url:
                        await self._final_sync(outbox, self.config.sync.request_timeout_s)
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
                self.notifier.close()
            log.info("stopped: %d blocks, %d episodes stored", stats.blocks, sink.stored)
            return DaemonResult(stats, sink.stored, sink.failures)
