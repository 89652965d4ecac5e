"""A live transport that outruns the pipeline loses data visibly, never silently."""

import asyncio

import numpy as np

from edge.sources.base import LiveBuffer, SourceStats
from edge.types import Block, ChannelSpec, Gap, GapReason, StreamKey

KEY = StreamKey("d", "ecg")


def block(i, n=10):
    return Block(KEY, (ChannelSpec("ECG", "mV"),), 100.0, i, i * n, 0.0, 0.0,
                 np.zeros((n, 1), np.float32))


def test_overflow_becomes_one_gap_covering_exactly_the_dropped_samples():
    async def scenario():
        stats = SourceStats()
        buf = LiveBuffer(3, stats)
        accepted = [buf.push(block(i)) for i in range(8)]  # 0..2 fit, 3..7 dropped
        out = [await buf.get() for _ in range(3)]
        buf.push(block(8))
        out += [await buf.get(), await buf.get()]
        return accepted, out, stats

    accepted, out, stats = asyncio.run(scenario())
    assert accepted == [True] * 3 + [False] * 5
    assert [type(x).__name__ for x in out] == ["Block", "Block", "Block", "Gap", "Block"]
    gap = out[3]
    assert isinstance(gap, Gap) and gap.reason is GapReason.OVERFLOW
    assert (gap.start_index, gap.end_index) == (30, 80)
    assert out[4].first_index == 80
    assert stats.errors["overflow"] == 5 and stats.gaps == 1


def test_blocks_after_a_pending_gap_wait_behind_it():
    async def scenario():
        buf = LiveBuffer(1, SourceStats())
        buf.push(block(0))
        buf.push(block(1))  # dropped
        first = await buf.get()  # frees room: the gap goes in
        buf.push(block(2))  # no room behind the gap: dropped too, gap extended?
        return first, await buf.get()

    first, second = asyncio.run(scenario())
    assert first.first_index == 0
    assert isinstance(second, Gap) and second.start_index == 10
