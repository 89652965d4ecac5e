"""Cut a stream's blocks into fixed windows (length and hop in samples)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.types import Block, ChannelSpec, StreamKey


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """``data[i]`` is sample ``start_index + i``; ``arrival`` is that of the last block."""

    key: StreamKey
    channels: tuple[ChannelSpec, ...]
    fs: float
    start_index: int
    arrival: float
    data: np.ndarray  # (n_samples, n_channels)

    @property
    def end_index(self) -> int:
        return self.start_index + int(self.data.shape[0])


class Windower:
    """Accumulates contiguous blocks and emits windows of ``length`` every ``hop`` samples.

    The caller guarantees contiguity (the pipeline turns discontinuities into
    gaps and calls :meth:`reset`); a partial window at a gap is discarded, not
    padded, so no processor ever sees invented samples.
    """

    def __init__(self, length: int, hop: int) -> None:
        if length <= 0 or hop <= 0 or hop > length:
            raise ValueError(f"need 0 < hop <= length, got length={length} hop={hop}")
        self.length = length
        self.hop = hop
        self._buf: np.ndarray | None = None
        self._start = 0  # stream index of _buf[0]
        self._fill = 0

    def reset(self) -> None:
        self._buf = None
        self._fill = 0

    def push(self, block: Block) -> list[Window]:
        if self._buf is None or self._buf.shape[1] != block.data.shape[1]:
            self._buf = np.empty((self.length + block.n_samples, block.data.shape[1]),
                                 dtype=np.float32)
            self._start = block.first_index
            self._fill = 0
        need = self._fill + block.n_samples
        if need > self._buf.shape[0]:
            grown = np.empty((need, self._buf.shape[1]), dtype=np.float32)
            grown[: self._fill] = self._buf[: self._fill]
            self._buf = grown
        self._buf[self._fill:need] = block.data
        self._fill = need
        out: list[Window] = []
        offset = 0
        while self._fill - offset >= self.length:
            out.append(Window(block.key, block.channels, block.fs, self._start + offset,
                              block.arrival, self._buf[offset:offset + self.length].copy()))
            offset += self.hop
        if offset:
            remaining = self._fill - offset
            self._buf[:remaining] = self._buf[offset:self._fill]
            self._fill = remaining
            self._start += offset
        return out
