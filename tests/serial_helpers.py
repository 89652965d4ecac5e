"""Shared set-up for the serial tests: short traces, and a device + source session on a pty."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from edge.sim.serial_device import VirtualSerialDevice
from edge.sources.backoff import Backoff
from edge.sources.serial import SerialSource
from edge.trace.format import TraceWriter
from edge.types import Block, ChannelSpec, StreamKey

DEMO_TRACE = Path(__file__).resolve().parent.parent / "edge" / "demo_data" / "mitdb208-5min.vetrace"


def write_trace(path: Path, seconds: float = 6.0, fs: float = 250.0, n_channels: int = 1,
                block_s: float = 0.25, seed: int = 0) -> Path:
    """A synthetic ECG-like trace, values on a 1/200 mV grid like an ADC's."""
    rng = np.random.default_rng(seed)
    key = StreamKey("synthetic", "ecg")
    names = ("I", "II", "III", "V1", "V2", "V3", "V4", "V5", "V6", "AVR")
    channels = tuple(ChannelSpec(names[i % len(names)], "mV") for i in range(n_channels))
    n = int(seconds * fs)
    t = np.arange(n) / fs
    sig = np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(1, 2, n_channels)
    sig = np.round((sig + 0.05 * rng.standard_normal((n, n_channels))) * 200) / 200
    step = int(block_s * fs)
    with TraceWriter(path, {"title": "synthetic"}) as w:
        for seq, start in enumerate(range(0, n, step)):
            data = sig[start:start + step].astype(np.float32)
            w.write(Block(key, channels, fs, seq, start, start / fs, start / fs, data))
    return path


async def session(vdev: VirtualSerialDevice, *, reconnect: bool = False,
                  timeout: float = 20.0, **source_kw):
    """Run ``vdev`` and a SerialSource on its pty to the end; return (items, source)."""
    task = asyncio.create_task(vdev.run())
    await asyncio.wait_for(vdev.ready.wait(), 5)
    src = SerialSource(vdev.port(), reconnect=reconnect,
                       backoff=Backoff(initial=0.05, maximum=0.2), **source_kw)
    vdev.on_finished = src.stop
    items = []

    async def read():
        async with src:
            async for item in src:
                items.append(item)

    try:
        await asyncio.wait_for(asyncio.gather(read(), task), timeout)
    finally:
        task.cancel()
    return items, src
