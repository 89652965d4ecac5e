"""Evidence plots: a signal with detected and reference events, one PNG per record.

Needs matplotlib (the optional extra ``tools``: ``pip install -e ".[tools]"``);
the Agg backend is used, so no display is needed (a Pi without a screen, CI).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Event = int | float | tuple[float, float] | Any  # a sample index, a span, or an Episode



def save_figure(fig: Any, out_png: str | Path) -> Path:
    """Lay out ``fig``, write it to ``out_png`` (its folder made if needed), close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out

def _spans_and_points(events: Sequence[Event] | np.ndarray | None, fs: float,
                      ) -> tuple[list[tuple[float, float, str]], np.ndarray]:
    spans: list[tuple[float, float, str]] = []
    points: list[float] = []
    for e in (() if events is None else events):
        onset, offset = getattr(e, "onset_index", None), getattr(e, "offset_index", None)
        if onset is not None and offset is not None:
            spans.append((onset / fs, max(offset, onset + 1) / fs, str(getattr(e, "kind", ""))))
        elif isinstance(e, tuple):
            label = str(e[2]) if len(e) > 2 else ""
            spans.append((float(e[0]) / fs, float(e[1]) / fs, label))
        else:
            points.append(float(e) / fs)
    return spans, np.asarray(points)


def plot_events(signal: np.ndarray, fs: float,
                detected_events: Sequence[Event] | np.ndarray | None,
                reference_events: Sequence[Event] | np.ndarray | None, out_png: str | Path,
                title: str = "", max_seconds: float | None = None) -> Path:
    """Plot ``signal`` with detected (red, above) and reference (green, below) events.

    Events are sample indices (beats: ticks), ``(start, end[, label])`` sample
    spans, or :class:`~edge.types.Episode` objects (shaded spans with their kind).
    ``max_seconds`` limits the plot to the start of a long record.
    """
    from edge.extras import require

    matplotlib = require("matplotlib", "tools", "plotting")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(signal, dtype=np.float64).ravel()
    if max_seconds is not None:
        x = x[: int(max_seconds * fs)]
    t = np.arange(x.size) / fs
    t_end = t[-1] if t.size else 0.0
    width = float(np.clip(t_end / 6.0, 10.0, 40.0))
    fig, ax = plt.subplots(figsize=(width, 4.0), dpi=100)
    ax.plot(t, x, lw=0.6, color="0.2", label="signal")
    lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (0.0, 1.0)
    pad = 0.1 * (hi - lo or 1.0)
    for events, color, y, name in ((detected_events, "tab:red", hi + pad, "detected"),
                                   (reference_events, "tab:green", lo - pad, "reference")):
        spans, points = _spans_and_points(events, fs)
        points = points[points <= t_end] if points.size else points
        if points.size:
            ax.plot(points, np.full(points.size, y), "|", color=color, ms=10, mew=1.2,
                    label=f"{name} beats ({points.size})")
        for k, (a, b, label) in enumerate(spans):
            if a > t_end:
                continue
            half = (0.5, 1.0) if name == "detected" else (0.0, 0.5)
            ax.axvspan(a, min(b, t_end), ymin=half[0], ymax=half[1], color=color, alpha=0.2,
                       label=f"{name} episodes" if k == 0 else None)
            ax.text(a, y, label, color=color, fontsize=8, va="bottom")
    ax.set_xlim(0, max(t_end, 1e-3))
    ax.set_ylim(lo - 2 * pad, hi + 2 * pad)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, out_png)


def plot_confusion(counts: np.ndarray, labels: Sequence[str], out_png: str | Path,
                   title: str = "") -> Path:
    """A confusion matrix (rows reference, columns detected) as a PNG, counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = np.asarray(counts, dtype=np.int64)
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            ax.text(j, i, str(c[i, j]), ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("detected class ('-' = reference beat missed)")
    ax.set_ylabel("reference class ('-' = false detection)")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, out_png)
