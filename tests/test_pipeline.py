"""The pipeline: continuity, gaps, routing, failure containment, clean shutdown."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from edge.clock import VirtualClock
from edge.config import PipelineConfig
from edge.pipeline import Pipeline
from edge.sources.base import Source
from edge.types import Block, ChannelSpec, Gap, GapReason, StreamKey
from edge.windowing import Window

KEY = StreamKey("dev", "ecg")
CH = (ChannelSpec("ECG", "mV"),)


def block(seq, first, n=25, fs=100.0):
    return Block(KEY, CH, fs, seq, first, first / fs, (first + n) / fs,
                 np.full((n, 1), float(seq), dtype=np.float32))


class ListSource(Source):
    name = "list"

    def __init__(self, items, delay=0.0):
        super().__init__()
        self._items = items
        self._delay = delay
        self.closed = False

    async def items(self):
        for it in self._items:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield it

    async def close(self):
        self.closed = True


class Recorder:
    """A processor that records what it sees (windows and gaps)."""

    name, version = "recorder", "0"

    def __init__(self, ctx):
        self.seen = []

    def accepts(self, item):
        return isinstance(item, Window | Gap)

    def feed(self, item):
        self.seen.append(item)
        return []

    def flush(self):
        return []


class Collect:
    def __init__(self):
        self.items = []
        self.closed = False

    async def handle(self, item):
        self.items.append(item)

    async def close(self):
        self.closed = True


def make(cfg=None):
    procs = []

    def factory(ctx):
        procs.append(Recorder(ctx))
        return procs[-1:]

    sink = Collect()
    pipe = Pipeline(factory, [sink], cfg or PipelineConfig(window_s=0.5, hop_s=0.5),
                    VirtualClock())
    return pipe, procs, sink


def test_contiguous_blocks_become_contiguous_windows():
    pipe, procs, _ = make()
    asyncio.run(pipe.run(ListSource([block(i, i * 25) for i in range(8)])))
    wins = [w for w in procs[0].seen if isinstance(w, Window)]
    assert [w.start_index for w in wins] == [0, 50, 100, 150]
    assert pipe.stats.samples == 200 and pipe.stats.gaps == 0


def test_a_skipped_block_becomes_an_explicit_gap_never_a_splice(caplog):
    pipe, procs, sink = make()
    items = [block(0, 0), block(1, 25), block(3, 75), block(4, 100)]
    with caplog.at_level(logging.WARNING):
        asyncio.run(pipe.run(ListSource(items)))
    gaps = [g for g in procs[0].seen if isinstance(g, Gap)]
    assert len(gaps) == 1
    assert (gaps[0].start_index, gaps[0].end_index, gaps[0].reason) == (50, 75, GapReason.SEQUENCE)
    assert pipe.stats.gaps_inserted == 1
    wins = [w for w in procs[0].seen if isinstance(w, Window)]
    assert wins[0].start_index == 0 and wins[-1].start_index == 75  # no window spans 50..75
    assert any(isinstance(i, Gap) for i in sink.items)
    assert "25 samples missing" in caplog.text


def test_an_overlapping_block_is_trimmed_and_counted():
    pipe, procs, _ = make()
    items = [block(0, 0), block(1, 25), block(2, 40), block(3, 65)]
    asyncio.run(pipe.run(ListSource(items)))
    assert pipe.stats.overlaps_trimmed == 1
    assert pipe.stats.samples == 90


def test_a_failing_processor_is_logged_and_counted_and_the_stream_goes_on(caplog):
    class Broken(Recorder):
        name = "broken"

        def feed(self, item):
            raise ZeroDivisionError("boom")

    ok = []

    def factory(ctx):
        ok.append(Recorder(ctx))
        return [Broken(ctx), ok[-1]]

    pipe = Pipeline(factory, [], PipelineConfig(window_s=0.25, hop_s=0.25), VirtualClock())
    with caplog.at_level(logging.ERROR):
        asyncio.run(pipe.run(ListSource([block(i, i * 25) for i in range(4)])))
    assert pipe.stats.processor_errors == {"broken:ZeroDivisionError": 4}
    assert len(ok[0].seen) == 4
    assert "processor broken failed" in caplog.text


def test_a_slow_pipeline_applies_backpressure_and_loses_nothing():
    class Slow(Recorder):
        def feed(self, item):
            import time
            time.sleep(0.001)
            return super().feed(item)

    procs = []

    def factory(ctx):
        procs.append(Slow(ctx))
        return procs[-1:]

    pipe = Pipeline(factory, [], PipelineConfig(queue_blocks=2, window_s=0.25, hop_s=0.25),
                    VirtualClock())
    asyncio.run(pipe.run(ListSource([block(i, i * 25) for i in range(200)])))
    assert len(procs[0].seen) == 200
    assert pipe.stats.gaps == 0


def test_cancelling_the_run_closes_sources_and_sinks_and_leaves_no_task():
    async def scenario():
        src = ListSource([block(i, i * 25) for i in range(10_000)], delay=0.001)
        pipe, _, sink = make()
        task = asyncio.create_task(pipe.run(src))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return src.closed, sink.closed, others

    closed, sink_closed, others = asyncio.run(scenario())
    assert closed and sink_closed
    assert others == []


def test_gaps_from_a_source_reach_processors_and_sinks():
    pipe, procs, sink = make()
    items = [block(0, 0), Gap(KEY, 25, None, GapReason.DISCONNECT, 0.3), block(5, 125)]
    asyncio.run(pipe.run(ListSource(items)))
    assert [g.reason for g in procs[0].seen if isinstance(g, Gap)] == [GapReason.DISCONNECT]
    assert pipe.stats.gaps_inserted == 0  # after an open-ended gap, the next block restarts


def test_a_requested_stop_processes_everything_received_and_flushes():
    class Flushing(Recorder):
        flushed = False

        def flush(self):
            Flushing.flushed = True
            return []

    procs = []

    def factory(ctx):
        procs.append(Flushing(ctx))
        return procs[-1:]

    sink = Collect()

    async def scenario():
        endless = ListSource([block(i, i * 25) for i in range(100_000)], delay=0.0005)
        pipe = Pipeline(factory, [sink], PipelineConfig(window_s=0.25, hop_s=0.25),
                        VirtualClock())
        task = asyncio.create_task(pipe.run(endless))
        await asyncio.sleep(0.1)
        pipe.request_stop()
        stats = await task
        return stats, endless

    stats, src = asyncio.run(scenario())
    assert 0 < stats.blocks < 100_000
    assert len(procs[0].seen) == stats.blocks  # every received block was processed
    assert Flushing.flushed and sink.closed and src.closed


def test_a_requested_stop_processes_every_sample_a_serial_source_received(tmp_path):
    """SIGTERM path with a live link: the serial source ends after yielding its buffer."""
    from edge.sim.serial_device import VirtualSerialDevice
    from edge.sources.serial import SerialSource

    trace = tmp_path / "t.vetrace"
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from serial_helpers import write_trace

    write_trace(trace, seconds=1800.0)

    async def scenario():
        dev = VirtualSerialDevice(trace, speed=None)  # as fast as the link takes it
        dev_task = asyncio.create_task(dev.run())
        await asyncio.wait_for(dev.ready.wait(), 5)
        src = SerialSource(dev.port(), reconnect=False)
        pipe, procs, _ = make()
        run = asyncio.create_task(pipe.run(src))
        await asyncio.sleep(0.3)
        pipe.request_stop()
        stats = await asyncio.wait_for(run, 20)
        dev_task.cancel()
        return stats, src

    stats, src = asyncio.run(scenario())
    assert 0 < stats.samples < 1800 * 250
    assert stats.samples == src.stats.samples  # nothing received was thrown away
