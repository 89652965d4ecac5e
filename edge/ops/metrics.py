"""Prometheus metrics on localhost, read from the daemon's counters at scrape time.

Nothing is observed in the hot path: the collector reads the counters the
pipeline, the sources and the outbox keep anyway, when Prometheus scrapes.
Served by a tiny asyncio HTTP handler (no extra thread); bound to 127.0.0.1
by default because metrics reveal activity patterns of a patient's devices.
Labels carry device pseudonyms and kinds, never patient data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from edge.pipeline import Pipeline
from edge.sources.base import Source

log = logging.getLogger(__name__)


class EdgeCollector(Collector):
    """Exports pipeline, source and outbox counters."""

    def __init__(self, pipeline: Pipeline, sources: Sequence[Source],
                 extra: Callable[[], dict[str, float]] | None = None,
                 models: Callable[[], Iterable[Any]] = tuple) -> None:
        self.pipeline = pipeline
        self.sources = sources
        self.extra = extra
        self.models = models  # the live models (a reload swaps them)

    def collect(self) -> Iterable[Any]:
        st = self.pipeline.stats
        samples = CounterMetricFamily("edge_source_samples", "Samples received", labels=["source"])
        gaps = CounterMetricFamily("edge_source_gaps", "Gap markers from the source",
                                   labels=["source"])
        reconnects = CounterMetricFamily("edge_source_reconnects", "Link re-establishments",
                                         labels=["source"])
        errors = CounterMetricFamily("edge_source_errors", "Source errors by kind",
                                     labels=["source", "kind"])
        for src in self.sources:
            name = getattr(src, "label", src.name)
            samples.add_metric([name], src.stats.samples)
            gaps.add_metric([name], src.stats.gaps)
            reconnects.add_metric([name], src.stats.reconnects)
            for kind, n in src.stats.errors.items():
                errors.add_metric([name, kind], n)
        yield from (samples, gaps, reconnects, errors)

        yield CounterMetricFamily("edge_pipeline_blocks", "Blocks processed", value=st.blocks)
        yield CounterMetricFamily("edge_pipeline_gaps", "Gaps seen by the pipeline",
                                  value=st.gaps)
        yield CounterMetricFamily("edge_pipeline_gaps_inserted",
                                  "Discontinuities the pipeline turned into gaps",
                                  value=st.gaps_inserted)
        yield GaugeMetricFamily("edge_pipeline_queue_depth", "Items waiting to be processed",
                                value=self.pipeline.queue_depth())
        perr = CounterMetricFamily("edge_processor_errors", "Processor failures (contained)",
                                   labels=["processor"])
        for key, n in st.processor_errors.items():
            perr.add_metric([key], n)
        yield perr
        eps = CounterMetricFamily("edge_episodes", "Episodes ended", labels=["kind", "priority"])
        for (kind, prio), n in st.episodes.items():
            eps.add_metric([kind, prio], n)
        yield eps
        yield HistogramMetricFamily("edge_block_latency_seconds",
                                    "From arrival at the pipeline to processed",
                                    buckets=st.latency.cumulative(), sum_value=st.latency.total_s)
        inf = HistogramMetricFamily("edge_inference_latency_seconds",
                                    "Per-call model inference time",
                                    labels=["model", "backend", "precision"])
        for model in self.models():
            inf.add_metric([model.name, model.backend_name, model.precision],
                           buckets=model.latency.cumulative(), sum_value=model.latency.total_s)
        yield inf
        if self.extra is not None:
            for name, value in self.extra().items():
                yield GaugeMetricFamily(name, name.replace("_", " "), value=value)


class MetricsServer:
    """``GET /metrics`` on ``host:port``; an async context manager."""

    def __init__(self, registry: CollectorRegistry, host: str = "127.0.0.1",
                 port: int = 9108) -> None:
        self.registry = registry
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> MetricsServer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body = generate_latest(self.registry)
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                        b"Content-Length: " + str(len(body)).encode() +
                        b"\r\nConnection: close\r\n\r\n")
            else:
                body = b"not found\n"
                head = (b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n"
                        b"Connection: close\r\n\r\n")
            writer.write(head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
