"""The live tap: the pipeline's blocks, beats, vitals and episodes, fanned out to browsers.

:class:`LiveView` is a pipeline sink (beats, vitals, gaps, episodes) and a
block hook (``Pipeline.on_block``, called as each block arrives, before any
processing). Both only append to bounded in-memory buffers: the pipeline never
waits for a browser.

Every ``1 / push_hz`` seconds :meth:`LiveView.tick` turns what arrived since the
last tick into one JSON message (new samples and beats per stream, and every
``status_every_s`` the status summary) and offers the same bytes to every
subscriber's bounded queue with ``put_nowait``. A subscriber whose queue is
full (a slow or stalled browser) is dropped on the spot: its ``on_drop``
callback closes its connection, and the page reconnects by itself. One message
is built per tick whatever the number of clients.

A new subscriber first gets a snapshot: the last ``strip_s`` seconds of each
waveform stream with the beats in it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.app import kind_of
from edge.config import WebConfig
from edge.types import Beat, Block, Episode, Gap, StreamKey, VitalSample

log = logging.getLogger(__name__)


def _round(x: np.ndarray) -> list[float | None]:
    """Samples as JSON numbers (3 decimals: 1 uV for ECG in mV); NaN as null."""
    r = np.round(x.astype(np.float64), 3)
    return [None if v != v else v for v in r.tolist()]


@dataclass
class StreamLive:
    """What the web view keeps of one stream: the last seconds of samples, beats, health."""

    key: StreamKey
    kind: str  # ecg, ppg, resp, vitals
    fs: float
    unit: str
    keep: int  # samples kept for the strip
    chunks: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    kept: int = 0
    end: int = 0  # index one past the newest sample
    beats: deque[tuple[int, str]] = field(default_factory=deque)
    new_chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)
    new_beats: list[tuple[int, str]] = field(default_factory=list)
    last_sample: float | None = None  # time.monotonic() of the newest block or vital
    gaps: int = 0
    samples: int = 0
    first_new_at: float | None = None  # time.monotonic() the oldest unsent block arrived

    @property
    def id(self) -> str:
        return str(self.key)

    def push(self, first: int, y: np.ndarray, now: float) -> None:
        if not self.new_chunks:
            self.first_new_at = now
        self.chunks.append((first, y))
        self.new_chunks.append((first, y))
        self.kept += y.size
        self.end = first + y.size
        self.samples += y.size
        self.last_sample = now
        while self.chunks and self.kept - self.chunks[0][1].size >= self.keep:
            self.kept -= self.chunks.popleft()[1].size
        oldest = self.end - self.keep
        while self.beats and self.beats[0][0] < oldest:
            self.beats.popleft()

    def beat(self, index: int, label: str) -> None:
        self.beats.append((index, label))
        self.new_beats.append((index, label))

    def snapshot(self) -> dict[str, Any]:
        first = self.chunks[0][0] if self.chunks else self.end
        y = (np.concatenate([c for _, c in self.chunks]) if self.chunks
             else np.zeros(0, np.float32))
        return {"id": self.id, "device": self.key.device, "stream": self.key.stream,
                "kind": self.kind, "fs": self.fs, "unit": self.unit, "i0": first,
                "y": _round(y), "beats": [list(b) for b in self.beats]}

    def take_new(self) -> dict[str, Any] | None:
        if not self.new_chunks and not self.new_beats:
            return None
        parts: list[dict[str, Any]] = []
        for first, y in self.new_chunks:
            if parts and parts[-1]["i0"] + len(parts[-1]["y"]) == first:
                parts[-1]["y"].extend(_round(y))
            else:
                parts.append({"i0": first, "y": _round(y)})
        out = {"parts": parts, "beats": [list(b) for b in self.new_beats]}
        self.new_chunks.clear()
        self.new_beats.clear()
        return out


@dataclass
class Latest:
    """The newest value of one vital of one device."""

    value: float
    unit: str
    quality: float
    source: str
    at: float  # time.monotonic() when it passed the sink


class Subscriber:
    """One open page: a bounded queue of encoded messages, dropped when it overflows."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize)
        self.dropped = False
        self.on_drop: Callable[[], None] | None = None


class LiveView:
    """Pipeline sink and block hook feeding the web view (see the module docstring)."""

    def __init__(self, config: WebConfig,
                 status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.config = config
        self.status_fn = status
        self.streams: dict[StreamKey, StreamLive] = {}
        self.vitals: dict[str, dict[str, Latest]] = {}  # device -> vital kind -> latest
        self.episodes_version = 0
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0  # slow clients disconnected
        self.seq = 0
        self._status: dict[str, Any] | None = None
        self._status_at = -1e9
        self._status_episodes = 0

    # -- the pipeline side (never blocks, never raises into the pipeline) ---------------

    def on_block(self, block: Block) -> None:
        """Pipeline block hook: keep channel 0 (the analysed lead) of waveform streams."""
        st = self.streams.get(block.key)
        if st is None:
            unit = block.channels[0].unit if block.channels else ""
            st = StreamLive(block.key, kind_of(block.key, block.channels), block.fs, unit,
                            keep=max(1, int(round(self.config.strip_s * block.fs))))
            self.streams[block.key] = st
        st.push(block.first_index, np.asarray(block.data[:, 0], dtype=np.float32),
                time.monotonic())

    async def handle(self, item: object) -> None:
        if isinstance(item, Beat):
            st = self.streams.get(item.key)
            if st is not None:
                st.beat(item.index, item.label)
        elif isinstance(item, VitalSample):
            now = time.monotonic()
            self.vitals.setdefault(item.key.device, {})[item.kind.value] = Latest(
                item.value, item.unit, item.quality, item.source, now)
            st = self.streams.get(item.key)
            if st is None and item.source == "device":  # a numeric-only stream
                st = StreamLive(item.key, "vitals", 0.0, "", keep=1)
                self.streams[item.key] = st
            if st is not None and st.kind == "vitals":
                st.last_sample = now
        elif isinstance(item, Gap):
            st = self.streams.get(item.key)
            if st is not None:
                st.gaps += 1
        elif isinstance(item, Episode):
            self.episodes_version += 1

    async def close(self) -> None:
        return None

    # -- the browser side ---------------------------------------------------------------

    def subscribe(self) -> tuple[Subscriber, bytes]:
        """A new subscriber and its first message (snapshot of every waveform strip)."""
        sub = Subscriber(self.config.client_queue)
        self.subscribers.add(sub)
        msg = {"type": "snapshot", "strip_s": self.config.strip_s,
               "stale_s": self.config.stale_s, "episodes": self.episodes_version,
               "streams": [s.snapshot() for s in self.streams.values() if s.kind != "vitals"],
               "status": self.status()}
        return sub, json.dumps(msg, separators=(",", ":")).encode()

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def status(self, force: bool = False) -> dict[str, Any]:
        """The status summary, recomputed at most every ``status_every_s`` (shared)."""
        now = time.monotonic()
        if self.status_fn is None:
            return {}
        if force or self._status is None or now - self._status_at >= self.config.status_every_s:
            self._status = self.status_fn()
            self._status_at = now
        return self._status

    def tick(self) -> bytes | None:
        """Build one update from what arrived since the last tick and offer it to everyone.

        Returns the encoded message (None when there was nothing to send).
        """
        now = time.monotonic()
        streams = {}
        waited = 0.0  # longest a sample in this update waited since its block arrived
        for st in self.streams.values():
            if st.new_chunks and st.first_new_at is not None:
                waited = max(waited, now - st.first_new_at)
            new = st.take_new()
            if new is not None and st.kind != "vitals":
                streams[st.id] = new
        if not self.subscribers:
            return None
        msg: dict[str, Any] = {"type": "tick", "seq": self.seq, "t": round(time.time(), 3),
                               "waited_ms": round(1000 * waited, 1),
                               "streams": streams, "episodes": self.episodes_version}
        if (self._status is None or now - self._status_at >= self.config.status_every_s
                or self._status_episodes != self.episodes_version):
            self._status_episodes = self.episodes_version  # the outbox panel matches the list
            msg["status"] = self.status(force=True)
        self.seq += 1
        data = json.dumps(msg, separators=(",", ":")).encode()
        self.publish(data)
        return data

    def publish(self, data: bytes) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(data)
            except asyncio.QueueFull:
                self.drop(sub)

    def drop(self, sub: Subscriber) -> None:
        """Disconnect a subscriber that fell ``client_queue`` messages behind."""
        if sub.dropped:
            return
        sub.dropped = True
        self.subscribers.discard(sub)
        self.dropped += 1
        log.warning("web view: a client fell %d updates behind and was disconnected",
                    self.config.client_queue)
        if sub.on_drop is not None:
            sub.on_drop()

    async def run(self) -> None:
        """Tick at ``push_hz`` until cancelled."""
        period = 1.0 / self.config.push_hz
        while True:
            await asyncio.sleep(period)
            try:
                self.tick()
            except Exception as exc:  # the view must never take the daemon down
                log.error("web view: update failed: %s", type(exc).__name__)
