"""Windows: fixed length and hop, never spanning a gap, never inventing samples."""

import numpy as np
import pytest

from edge.types import Block, ChannelSpec, StreamKey
from edge.windowing import Windower

KEY = StreamKey("d", "ecg")


def _blocks(sizes):
    start = 0
    for seq, n in enumerate(sizes):
        data = np.arange(start, start + n, dtype=np.float32).reshape(n, 1)
        yield Block(KEY, (ChannelSpec("ECG", "mV"),), 100.0, seq, start, 0.0, 0.0, data)
        start += n


@pytest.mark.parametrize("length,hop", [(100, 100), (100, 50), (7, 3)])
def test_windows_cover_the_stream_in_order_whatever_the_block_sizes(length, hop):
    w = Windower(length, hop)
    rng = np.random.default_rng(1)
    wins = [win for b in _blocks(rng.integers(1, 60, 40)) for win in w.push(b)]
    assert wins, "expected windows"
    for k, win in enumerate(wins):
        assert win.start_index == k * hop
        np.testing.assert_array_equal(win.data[:, 0], np.arange(k * hop, k * hop + length))


def test_reset_discards_the_partial_window():
    w = Windower(10, 10)
    blocks = list(_blocks([6, 6]))
    assert w.push(blocks[0]) == []
    w.reset()
    assert w.push(blocks[1]) == []  # 6 new samples only: no window made of old + new


def test_invalid_lengths_are_refused():
    with pytest.raises(ValueError):
        Windower(10, 20)
