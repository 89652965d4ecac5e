"""An episode's evidence strip, annotated: beats with their class, RR intervals, signal quality.

The outbox keeps the raw snippet around each episode's onset (see
:mod:`edge.detect.evidence`). To show it to a clinician the snippet goes once
more through the same standard pipeline (:func:`edge.app.processor_factory`,
the configured models), so its beat marks are those the live detectors make;
quality is the same bSQI/kSQI/basSQI index, over the quality windows that fit.
The first second or two of a snippet is the detectors' warm-up: a beat there
may be missing.

Used by the web view (``GET /api/episodes/{id}/evidence``) and by ``edge events
show ID --png FILE`` (:func:`render_png`, matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.app import kind_of, processor_factory
from edge.clock import VirtualClock
from edge.config import EdgeConfig
from edge.detect.models import ModelSet
from edge.detect.quality import ecg_quality
from edge.pipeline import Output, Pipeline
from edge.sources.replay import RecordingSource
from edge.store.outbox import Evidence
from edge.trace.recordings import Recording
from edge.types import Beat, ChannelSpec, Episode

#: How late an episode may be raised and still get a snippet around its onset
#: (``EvidenceRecorder``'s ``max_episode_lag_s``).
EVIDENCE_LAG_S = 120.0


@dataclass
class EvidenceView:
    """A snippet with what the detectors find in it (times in seconds from its first sample)."""

    episode: Episode
    fs: float
    unit: str
    samples: np.ndarray
    onset_s: float | None  # where the episode's onset lies in the snippet, when known
    kind: str  # ecg, ppg, resp
    beats: list[tuple[int, str]] = field(default_factory=list)
    quality: list[tuple[float, float, float]] = field(default_factory=list)  # start, end, sqi

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.fs

    def rr(self) -> list[tuple[float, float]]:
        """(time of the second beat, RR interval in s) for each pair of successive beats."""
        idx = [i for i, _ in self.beats]
        return [(b / self.fs, (b - a) / self.fs) for a, b in zip(idx, idx[1:], strict=False)]

    def to_dict(self) -> dict[str, Any]:
        y = np.round(self.samples.astype(np.float64), 3)
        return {"id": self.episode.id, "kind": self.kind, "fs": self.fs, "unit": self.unit,
                "onset_s": self.onset_s, "y": [None if v != v else v for v in y.tolist()],
                "beats": [[i, label] for i, label in self.beats],
                "rr": [[round(t, 3), round(r, 3)] for t, r in self.rr()],
                "quality": [[round(a, 2), round(b, 2), round(q, 2)]
                            for a, b, q in self.quality]}


class _Beats:
    def __init__(self) -> None:
        self.beats: list[tuple[int, str]] = []

    async def handle(self, item: Output) -> None:
        if isinstance(item, Beat):
            self.beats.append((item.index, item.label))

    async def close(self) -> None:
        return None


async def annotate(episode: Episode, evidence: Evidence, config: EdgeConfig,
                   models: ModelSet) -> EvidenceView:
    """Re-detect beats (ECG snippets) and compute quality windows over ``evidence``."""
    x = np.asarray(evidence.samples, dtype=np.float32)
    fs = evidence.fs
    pre, post = config.evidence.pre_s, config.evidence.post_s
    # The recorder cuts [onset - pre_s, onset + post_s) when its history still holds the
    # onset, else the latest stretch (an episode raised long after it began): only the
    # first case is certain, when the onset is late enough in the stream and the episode
    # short enough to have been raised within the recorder's history.
    around_onset = (abs(x.size - int(pre * fs) - int(post * fs)) <= 1
                    and episode.onset_index >= int(pre * fs)
                    and episode.duration <= EVIDENCE_LAG_S)
    onset_s = pre if around_onset else None
    channel = ChannelSpec("ECG" if evidence.unit == "mV" else episode.key.stream.upper(),
                          evidence.unit)
    kind = kind_of(episode.key, (channel,))
    view = EvidenceView(episode, fs, evidence.unit, x, onset_s, kind)
    if kind != "ecg" or x.size == 0:
        return view
    rec = Recording(f"evidence-{episode.id}", fs, (channel,), x.reshape(-1, 1))
    src = RecordingSource(rec, device=episode.key.device, stream=episode.key.stream,
                          block_s=config.pipeline.replay_block_s,
                          clock=VirtualClock(start_wall=episode.onset - (onset_s or 0.0)))
    beats = _Beats()
    pipeline = Pipeline(processor_factory(config, models), [beats], config.pipeline, src.clock)
    await pipeline.run(src)
    view.beats = sorted(beats.beats)
    q = config.ecg_quality
    win = min(x.size, int(round(q.window_s * fs)))
    step = max(1, int(round(q.step_s * fs)))
    for start in range(0, max(1, x.size - win + 1), step):
        sqi = ecg_quality(x[start:start + win], fs, q).sqi
        view.quality.append((start / fs, (start + win) / fs, float(sqi)))
    return view


_LABEL_COLOURS = {"N": "#1f6f3f", "V": "#c0392b", "S": "#1f4e9c", "F": "#8e44ad", "Q": "#555555"}


def render_png(view: EvidenceView, path: str | Path) -> Path:
    """Write the evidence strip as a PNG a clinician can read.

    Top: the waveform on ECG paper proportions (time in s, amplitude in the
    signal's unit) with each beat's class above it and the onset marked.
    Middle: RR intervals. Bottom: signal quality per window (0-1, with the
    usable threshold). Needs matplotlib (the ``plot`` extra).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = view.episode
    t = np.arange(view.samples.size) / view.fs
    fig, axes = plt.subplots(3, 1, figsize=(12, 6.2), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1, 0.8]})
    ax, ax_rr, ax_q = axes
    ax.plot(t, view.samples, color="black", linewidth=0.8)
    ax.set_ylabel(f"{view.kind.upper()} ({view.unit})" if view.unit else view.kind.upper())
    ax.grid(True, which="major", color="#f2b8b8", linewidth=0.8)
    ax.minorticks_on()
    ax.grid(True, which="minor", color="#fbe3e3", linewidth=0.4)
    finite = view.samples[np.isfinite(view.samples)]
    top = float(finite.max()) if finite.size else 1.0
    bottom = float(finite.min()) if finite.size else 0.0
    span = max(top - bottom, 1e-6)
    ax.set_ylim(bottom - 0.05 * span, top + 0.22 * span)
    for i, label in view.beats:
        if 0 <= i < view.samples.size:
            colour = _LABEL_COLOURS.get(label, "#555555")
            ax.axvline(i / view.fs, color=colour, alpha=0.25, linewidth=0.8)
            ax.text(i / view.fs, top + 0.1 * span, label, ha="center", va="center",
                    fontsize=9, fontweight="bold", color=colour)
    if view.onset_s is not None:
        for a in axes:
            a.axvline(view.onset_s, color="#d35400", linestyle="--", linewidth=1.2)
        ax.text(view.onset_s, bottom - 0.02 * span, " onset", color="#d35400", fontsize=8,
                va="bottom")
    rr = view.rr()
    if rr:
        ax_rr.plot([a for a, _ in rr], [b * 1000 for _, b in rr], "o-", color="#1f4e9c",
                   markersize=3, linewidth=0.8)
    ax_rr.set_ylabel("RR (ms)")
    ax_rr.grid(True, color="#dddddd", linewidth=0.5)
    for a, b, q in view.quality:
        ax_q.hlines(q, a, b, color="#117a65", linewidth=2)
    ax_q.set_ylim(0, 1.05)
    ax_q.set_ylabel("quality")
    ax_q.set_xlabel("seconds from the start of the snippet")
    ax_q.grid(True, color="#dddddd", linewidth=0.5)
    counts: dict[str, int] = {}
    for _, label in view.beats:
        counts[label] = counts.get(label, 0) + 1
    beats = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none detected"
    from datetime import UTC, datetime

    onset = datetime.fromtimestamp(ep.onset, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    fig.suptitle(f"{ep.kind} ({ep.priority.value}, {ep.status}) on {ep.key}: onset {onset}, "
                 f"{ep.duration:.1f} s  |  beats: {beats}",
                 fontsize=10)
    if view.onset_s is None:
        ax.text(0.995, 0.02, "snippet position relative to the onset not recorded "
                "(latest stretch when raised)", transform=ax.transAxes, ha="right",
                fontsize=8, color="#555555")
    ax.set_xlim(0, max(view.duration_s, 1e-3))
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
