"""The gateway daemon: sources from config -> pipeline -> outbox, until told to stop.

A tree of tasks with one owner: the pipeline (one task per source plus the
processing task), and beside it the services (sync, metrics, watchdog) as
they are configured. SIGTERM and SIGINT stop it gracefully: sources close,
everything received is processed, processors flush, the outbox is closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass

from edge.app import processor_factory
from edge.clock import Clock, MonotonicClock
from edge.config import EdgeConfig, SourceConfig
from edge.errors import ConfigError
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

    def __init__(self, config: EdgeConfig) -> None:
        if not config.sources:
            raise ConfigError("no [[sources]] configured: nothing to monitor")
        self.config = config
        self.sources = [build_source(s, i) for i, s in enumerate(config.sources)]
        replay_clock = next((s.clock for s in self.sources
                             if isinstance(s, RecordingSource | TraceSource)), None)
        self.clock: Clock = replay_clock or MonotonicClock()
        self.pipeline: Pipeline | None = None

    def stop(self) -> None:
        if self.pipeline is not None:
            log.info("stop requested: draining the pipeline")
            self.pipeline.request_stop()

    async def run(self) -> DaemonResult:
        loop = asyncio.get_running_loop()
        with Outbox(self.config.store.path) as outbox:
            sink = OutboxSink(outbox)
            self.pipeline = Pipeline(processor_factory(self.config), [sink],
                                     self.config.pipeline, self.clock)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            try:
                log.info("monitoring %d source(s)", len(self.sources))
                stats = await self.pipeline.run(*self.sources)
            finally:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            log.info("stopped: %d blocks, %d episodes stored", stats.blocks, sink.stored)
            return DaemonResult(stats, sink.stored, sink.failures)
