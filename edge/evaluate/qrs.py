"""QRS detection quality on annotated WFDB records, through the live pipeline.

Beat-by-beat comparison in the style of ANSI/AAMI EC57: a detection within
150 ms of a reference beat is a true positive (one-to-one), non-beat
annotations are ignored, and totals are gross (summed TP/FP/FN over records).
Unlike ``bxb``'s default, the whole record is scored (no 5-minute learning
period is excluded): stricter, and what a wearable user actually sees.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.app import run_pipeline
from edge.clock import VirtualClock
from edge.config import EdgeConfig
from edge.errors import RecordFormatError
from edge.evaluate.beats import BeatMatch, match_beats, reference_beats
from edge.evaluate.progress import OnRecord, each
from edge.sources.open import DEFAULT_START_WALL
from edge.sources.replay import RecordingSource
from edge.trace.recordings import load_wfdb


def _row(name: str, m: BeatMatch, **extra: Any) -> dict[str, Any]:
    return {"record": name, "tp": m.tp, "fp": m.fp, "fn": m.fn,
            "se": round(m.se, 6), "ppv": round(m.ppv, 6), "f1": round(m.f1, 6), **extra}


async def qrs_record(path: str | Path, config: EdgeConfig, annotator: str = "atr",
                     channel: str | None = None, tolerance_s: float = 0.150,
                     plot_dir: str | Path | None = None,
                     ) -> tuple[BeatMatch, dict[str, Any]]:
    rec = load_wfdb(path, channel=channel, annotator=annotator)
    if rec.ann_index.size == 0:
        raise RecordFormatError(f"{path}: no '{annotator}' annotations to compare against")
    src = RecordingSource(rec, block_s=config.pipeline.replay_block_s,
                          clock=VirtualClock(start_wall=rec.start_wall or DEFAULT_START_WALL))
    _, summary = await run_pipeline(src, config)
    ref = reference_beats(SimpleNamespace(sample=rec.ann_index, symbol=rec.ann_symbol))
    det = np.asarray(summary.beat_index, dtype=np.int64)
    match = match_beats(ref, det, rec.fs, tolerance_s)
    if plot_dir is not None:
        from edge.evaluate.plots import plot_events

        plot_events(rec.signal[:, 0], rec.fs, det, ref, Path(plot_dir) / f"{rec.name}-qrs.png",
                    title=f"{rec.name}: beats detected (top) vs reference (bottom), first 60 s",
                    max_seconds=60)
    return match, _row(rec.name, match, channel=rec.channels[0].name, fs=rec.fs,
                       minutes=round(rec.duration_s / 60, 2))


def evaluate_qrs(paths: list[str], config: EdgeConfig, annotator: str = "atr",
                 channel: str | None = None, tolerance_s: float = 0.150,
                 plot_dir: str | Path | None = None,
                 on_record: OnRecord | None = None) -> dict[str, Any]:
    """Per-record and gross TP/FP/FN, sensitivity and positive predictivity."""
    rows = []
    total = BeatMatch(0, 0, 0)
    for p in each(paths, on_record):
        match, row = asyncio.run(qrs_record(p, config, annotator, channel, tolerance_s,
                                            plot_dir))
        rows.append(row)
        total = total + match
    return {"task": "qrs", "tolerance_s": tolerance_s, "annotator": annotator,
            "records": rows, "total": _row("total", total)}
