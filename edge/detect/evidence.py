"""Evidence snippets: the waveform around each episode's onset, kept with the episode.

The last step of a waveform stream: it keeps a ring of recent samples
(``pre_s + post_s`` plus margin) and, the first time it sees an episode id,
cuts ``[onset - pre_s, onset + post_s)``. When the post-onset samples have
not arrived yet it waits for them; when the onset is older than the history
kept (an episode confirmed minutes after it began), it keeps the latest
stretch of the same length instead. Snippets go to a store callback (the
outbox's ``put_evidence``); a store failure is logged and counted, never
fatal. Whether snippets leave the device is ``[fhir] send_evidence``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from edge.config import EvidenceConfig
from edge.dsp.ring import SampleRing
from edge.errors import StoreError
from edge.pipeline import Item, Output, StreamContext
from edge.types import Episode, Gap
from edge.windowing import Window

log = logging.getLogger(__name__)

EvidenceStore = Callable[[str, float, str, np.ndarray], None]


class EvidenceRecorder:
    name = "evidence"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: EvidenceConfig, store: EvidenceStore,
                 max_episode_lag_s: float = 120.0) -> None:
        self.ctx = ctx
        self.config = config
        self.store = store
        self.unit = ctx.channels[0].unit if ctx.channels else ""
        # episodes can be raised up to ~min-duration late (AF: 30 s+): keep enough history
        self._ring = SampleRing(int((config.pre_s + config.post_s + max_episode_lag_s) * ctx.fs))
        self._seen: set[str] = set()
        self._pending: list[tuple[str, int, int]] = []
        self.stored = 0
        self.failures = 0

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Episode | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Window):
            self._ring.push(item.start_index, item.data[:, 0])
            self._flush_ready(final=False)
        elif isinstance(item, Gap):
            self._flush_ready(final=True)  # what we have is all there will be
            self._ring.reset()
        elif isinstance(item, Episode) and item.id not in self._seen:
            self._seen.add(item.id)
            fs = self.ctx.fs
            start = item.onset_index - int(self.config.pre_s * fs)
            end = item.onset_index + int(self.config.post_s * fs)
            self._pending.append((item.id, start, end))
            self._flush_ready(final=False)
        return []

    def flush(self) -> Iterable[Output]:
        self._flush_ready(final=True)
        return []

    def _flush_ready(self, final: bool) -> None:
        waiting = []
        ring = self._ring
        for event_id, start, end in self._pending:
            if end > ring.end and not final:
                waiting.append((event_id, start, end))
                continue
            snippet = ring.segment(start, end)
            if snippet is None:
                # raised long after its onset (e.g. a burden over minutes): keep the
                # latest stretch of the same length, what the detector was looking at
                snippet = ring.segment(ring.end - (end - start), ring.end)
                if snippet is None:
                    continue
            try:
                self.store(event_id, self.ctx.fs, self.unit, snippet.astype(np.float32))
                self.stored += 1
            except StoreError as exc:
                self.failures += 1
                log.error("evidence for event %s not stored: %s", event_id, exc)
        self._pending = waiting
