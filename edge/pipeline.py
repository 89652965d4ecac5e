"""The streaming pipeline: sources -> per-stream windows -> processors -> sinks.

One code path serves live devices and replayed recordings::

    Source(s) --(bounded queue)--> StreamState (continuity, windows)
                                        |
                                  processors, in order:
                          waveform (Window) -> beats -> vitals -> episodes
                                        |
                                      sinks (outbox, summary, recorder)

Backpressure: each source runs in its own task and ``await``s a bounded
queue, so a slow pipeline slows a replay down instead of dropping data. Live
transports that cannot wait (radio notifications) keep their own bounded
buffer and turn an overflow into a :class:`~edge.types.Gap` with reason
``overflow``: data is never dropped silently.

Continuity: a block that starts after the previous one ended produces a
``sequence`` gap (never a silent splice); a block that overlaps what was
already seen is trimmed and counted.

Shutdown: :meth:`Pipeline.run` owns every task it starts (a TaskGroup).
:meth:`Pipeline.request_stop` is the graceful path (SIGTERM): sources are
closed, everything already queued is processed, processors are flushed and
sinks closed, so no received sample is lost. Cancelling :meth:`run` is the
hard path: tasks are cancelled and sinks closed, the queue is abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edge.clock import Clock, DeviceClockEstimator, MonotonicClock
from edge.config import PipelineConfig
from edge.sources.base import Source
from edge.stats import LatencyHistogram
from edge.types import (
    Beat,
    Block,
    ChannelSpec,
    Episode,
    Gap,
    GapReason,
    SourceItem,
    StreamKey,
    VitalSample,
)
from edge.windowing import Window, Windower

log = logging.getLogger(__name__)

#: What processors emit and sinks receive.
Output = Beat | VitalSample | Episode | Gap
#: What processors may consume (later steps may consume earlier steps' episodes).
Item = Window | Beat | VitalSample | Gap | Episode


class StreamContext:
    """What a processor may know about its stream: key, rate and sample-to-UTC mapping."""

    def __init__(self, key: StreamKey, fs: float, clock: Clock,
                 channels: tuple[ChannelSpec, ...] = ()) -> None:
        self.key = key
        self.fs = fs
        self.channels = channels  # empty for numeric-only (vital sample) streams
        self._clock = clock
        self._estimator = DeviceClockEstimator()
        self._anchor: float | None = None

    def observe(self, block: Block) -> None:
        """Pair the block's last sample time with its arrival (clock offset and drift)."""
        device_t = block.end_index / block.fs
        self._estimator.observe(device_t, block.arrival)
        if self._anchor is None:
            self._anchor = _to_wall(self._clock, block.arrival) - device_t

    def wall(self, index: int | float) -> float:
        """UTC epoch seconds of sample ``index`` of this stream."""
        device_t = float(index) / self.fs
        fit = self._estimator.fit()
        if fit is None or self._anchor is None:
            return (self._anchor or _to_wall(self._clock, self._clock.now())) + device_t
        return _to_wall(self._clock, fit.to_gateway(device_t))

    def arrival_to_wall(self, arrival: float) -> float:
        """UTC epoch seconds of a gateway arrival time (for numeric-only streams)."""
        return _to_wall(self._clock, arrival)

    @property
    def anchored(self) -> bool:
        """True once a block has tied this stream's sample clock to the gateway clock."""
        return self._anchor is not None

    @property
    def clock_fit(self) -> Any:
        return self._estimator.fit()


def _to_wall(clock: Clock, t: float) -> float:
    to_wall = getattr(clock, "to_wall", None)
    if to_wall is not None:
        return float(to_wall(t))
    return clock.wall() - (clock.now() - t)


@runtime_checkable
class Processor(Protocol):
    """A step of the pipeline: feed it items, collect what it emits."""

    name: str
    version: str

    def accepts(self, item: Item) -> bool: ...

    def feed(self, item: Item) -> Iterable[Output]: ...

    def flush(self) -> Iterable[Output]: ...


class Sink(Protocol):
    async def handle(self, item: Output) -> None: ...

    async def close(self) -> None: ...


ProcessorFactory = Callable[[StreamContext], Sequence[Processor]]


@dataclass
class PipelineStats:
    items: int = 0  # everything taken off the queue (liveness: the watchdog watches this)
    blocks: int = 0
    samples: int = 0
    windows: int = 0
    gaps: int = 0
    gaps_inserted: int = 0
    overlaps_trimmed: int = 0
    vitals_in: int = 0
    outputs: dict[str, int] = field(default_factory=dict)
    processor_errors: dict[str, int] = field(default_factory=dict)
    latency_s: list[float] = field(default_factory=list)
    max_latency_samples: int = 100_000
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    episodes: dict[tuple[str, str], int] = field(default_factory=dict)

    def observe_latency(self, seconds: float) -> None:
        """Count one block latency (histogram for metrics; raw values for percentiles)."""
        self.latency.observe(seconds)
        if len(self.latency_s) < self.max_latency_samples:
            self.latency_s.append(seconds)

    def latency_ms(self) -> dict[str, float]:
        if not self.latency_s:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        arr = np.asarray(self.latency_s) * 1e3
        return {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)),
                "max": float(arr.max())}


class _Stream:
    def __init__(self, ctx: StreamContext, processors: Sequence[Processor], windower: Windower):
        self.ctx = ctx
        self.processors = list(processors)
        self.windower = windower
        self.expected: int | None = None
        # processors that may revise every episode of the stream before anyone sees it
        # (signal-quality gating): applied once, where the episode is emitted
        self.gates: list[Callable[[Episode], Episode]] = [
            gate for p in self.processors
            if callable(gate := getattr(p, "gate_episode", None))]


class Pipeline:
    """Runs sources through per-stream processors into sinks.

    ``factory`` builds the processors for a new stream (called once per
    stream, on its first block); ``sinks`` receive every output.
    """

    def __init__(self, factory: ProcessorFactory, sinks: Sequence[Sink] = (),
                 config: PipelineConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or PipelineConfig()
        self.factory = factory
        self.sinks = list(sinks)
        self.clock: Clock = clock or MonotonicClock()
        self.stats = PipelineStats()
        self._streams: dict[StreamKey, _Stream] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._sources: list[Source] = []
        self._stop_requested = False
        self._queue: asyncio.Queue[Any] | None = None
        self.on_block: Callable[[Block], None] | None = None  # progress hook

    # -- running -------------------------------------------------------------
    async def run(self, *sources: Source) -> PipelineStats:
        """Run until every source ends; flush processors; close sinks."""
        queue: asyncio.Queue[tuple[float, SourceItem] | None] = asyncio.Queue(
            self.config.queue_blocks)
        self._queue = queue
        try:
            async with asyncio.TaskGroup() as tg:
                self._sources = list(sources)
                self._pumps = [tg.create_task(self._pump(src, queue), name=f"source:{src.name}")
                               for src in sources]
                tg.create_task(self._consume(queue, len(sources)), name="pipeline")
            await self._finish()
        finally:
            for sink in self.sinks:
                await sink.close()
        return self.stats

    def processors(self) -> list[Processor]:
        """Every processor of every stream (for reconfiguration and model reloads)."""
        return [p for s in self._streams.values() for p in s.processors]

    def stream_processors(self) -> dict[StreamKey, list[Processor]]:
        """Each stream's processors, in order (for status displays: latest quality, NEWS2)."""
        return {key: list(s.processors) for key, s in self._streams.items()}

    def queue_depth(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    def request_stop(self, grace_s: float = 5.0) -> None:
        """Stop reading sources; what was received is still processed and flushed.

        A source with a ``stop()`` method (serial, BLE) is asked to end its
        iteration after yielding what it already received; one that has not
        ended within ``grace_s``, or has no ``stop()``, is cancelled.
        """
        self._stop_requested = True
        for src, task in zip(self._sources, self._pumps, strict=True):
            stop = getattr(src, "stop", None)
            if callable(stop):
                stop()
                asyncio.get_running_loop().call_later(grace_s, task.cancel)
            else:
                task.cancel()

    async def _pump(self, src: Source, queue: asyncio.Queue[Any]) -> None:
        hard_cancel = False
        try:
            async with src:
                async for item in src:
                    await queue.put((time.perf_counter(), item))
        except asyncio.CancelledError:
            if not self._stop_requested:
                hard_cancel = True  # the whole run is cancelled: nobody drains the queue
                raise
            log.info("source %s stopped on request", src.name)
        finally:
            if not hard_cancel:
                await queue.put(None)  # tell the consumer this source has ended

    async def _consume(self, queue: asyncio.Queue[Any], n_sources: int) -> None:
        ended = 0
        while ended < n_sources:
            entry = await queue.get()
            if entry is None:
                ended += 1
                continue
            t_in, item = entry
            await self.process(item)
            self.stats.items += 1
            if isinstance(item, Block):
                self.stats.observe_latency(time.perf_counter() - t_in)

    async def _finish(self) -> None:
        for stream in self._streams.values():
            for i, proc in enumerate(stream.processors):
                for out in self._safe(proc, "flush", None):
                    await self._route(stream, out, i + 1)

    # -- processing ------------------------------------------------------------
    async def process(self, item: SourceItem) -> None:
        """Process one item from a source (public so tests can drive it directly)."""
        if isinstance(item, Block):
            await self._on_block(item)
        elif isinstance(item, Gap):
            self.stats.gaps += 1
            stream = self._streams.get(item.key)
            if stream is not None:
                await self._on_gap(stream, item)
                if item.end_index is not None:
                    stream.expected = item.end_index
                else:
                    stream.expected = None
        elif isinstance(item, VitalSample):
            self.stats.vitals_in += 1
            stream = self._streams.get(item.key)
            if stream is None:
                stream = self._new_stream(item.key, 1.0)
            await self._route(stream, item, 0)

    def _new_stream(self, key: StreamKey, fs: float,
                    channels: tuple[ChannelSpec, ...] = ()) -> _Stream:
        ctx = StreamContext(key, fs, self.clock, channels)
        length = max(1, int(round(self.config.window_s * fs)))
        hop = max(1, min(length, int(round(self.config.hop_s * fs))))
        stream = _Stream(ctx, self.factory(ctx), Windower(length, hop))
        self._streams[key] = stream
        return stream

    async def _on_block(self, block: Block) -> None:
        stream = self._streams.get(block.key)
        if stream is None:
            stream = self._new_stream(block.key, block.fs, block.channels)
        if stream.expected is not None and block.first_index != stream.expected:
            if block.first_index > stream.expected:
                gap = Gap(block.key, stream.expected, block.first_index, GapReason.SEQUENCE,
                          block.arrival, block.fs)
                self.stats.gaps += 1
                self.stats.gaps_inserted += 1
                log.warning("stream %s: %d samples missing; marked as a gap", block.key,
                            gap.n_missing)
                await self._on_gap(stream, gap)
            else:
                overlap = stream.expected - block.first_index
                self.stats.overlaps_trimmed += 1
                if overlap >= block.n_samples:
                    return
                block = Block(block.key, block.channels, block.fs, block.seq, stream.expected,
                              block.device_time + overlap / block.fs, block.arrival,
                              block.data[overlap:])
        stream.expected = block.end_index
        stream.ctx.observe(block)
        self.stats.blocks += 1
        self.stats.samples += block.n_samples
        if self.on_block is not None:
            self.on_block(block)
        for window in stream.windower.push(block):
            self.stats.windows += 1
            await self._route(stream, window, 0)

    async def _on_gap(self, stream: _Stream, gap: Gap) -> None:
        stream.windower.reset()
        await self._route(stream, gap, 0)

    async def _route(self, stream: _Stream, item: Item, first: int) -> None:
        """Offer ``item`` to processors from position ``first`` on, then to the sinks."""
        if isinstance(item, Episode):
            for gate in stream.gates:
                item = gate(item)
        if not isinstance(item, Window):
            name = type(item).__name__
            self.stats.outputs[name] = self.stats.outputs.get(name, 0) + 1
            if isinstance(item, Episode) and item.status == "ended":
                k = (item.kind, item.priority.value)
                self.stats.episodes[k] = self.stats.episodes.get(k, 0) + 1
            for sink in self.sinks:
                await sink.handle(item)
        for i in range(first, len(stream.processors)):
            proc = stream.processors[i]
            if proc.accepts(item):
                for out in self._safe(proc, "feed", item):
                    await self._route(stream, out, i + 1)

    def _safe(self, proc: Processor, method: str, item: Item | None) -> list[Output]:
        """Run a processor step; a failing processor is logged and counted, never fatal."""
        try:
            fn = getattr(proc, method)
            return list(fn(item) if item is not None else fn())
        except Exception as exc:  # one bad processor must not stop the monitoring
            key = f"{proc.name}:{type(exc).__name__}"
            self.stats.processor_errors[key] = self.stats.processor_errors.get(key, 0) + 1
            log.error("processor %s failed on %s: %s", proc.name, method, type(exc).__name__)
            return []
