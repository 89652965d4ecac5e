"""PVC (ventricular beat) detection quality, beat by beat, through the pipeline.

ANSI/AAMI EC57 style: reference V-class beats are the ``atr`` beats with
symbols V or E; detected V beats are the pipeline's beats labelled ``V`` by
the beat classifier; they match one-to-one within 150 ms
(:func:`~edge.evaluate.beats.match_beats`). Gross totals over records.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import EdgeConfig
from edge.detect.models import ModelSet
from edge.errors import RecordFormatError
from edge.evaluate.af import replay_with_models
from edge.evaluate.beats import BeatMatch, match_beats
from edge.evaluate.progress import OnRecord, each
from edge.trace.recordings import load_wfdb

__all__ = ["V_SYMBOLS", "evaluate_pvc"]

V_SYMBOLS = frozenset({"V", "E"})


def _row(name: str, m: BeatMatch, **extra: Any) -> dict[str, Any]:
    return {"record": name, "tp": m.tp, "fp": m.fp, "fn": m.fn, "se": round(m.se, 6),
            "ppv": round(m.ppv, 6), "f1": round(m.f1, 6), **extra}


def pvc_record(path: str | Path, config: EdgeConfig, models: ModelSet,
               channel: str | None = None, tolerance_s: float = 0.150,
               plot_dir: str | Path | None = None,
               ) -> tuple[BeatMatch, dict[str, Any]]:
    rec = load_wfdb(path, channel=channel, annotator="atr")
    if not rec.ann_index.size:
        raise RecordFormatError(f"{path}: no 'atr' annotations to compare against")
    ref = np.array([i for i, s in zip(rec.ann_index, rec.ann_symbol, strict=True)
                    if s in V_SYMBOLS], dtype=np.int64)
    beats, _ = asyncio.run(replay_with_models(rec, config, models))
    det = np.array([b.index for b in beats if b.label == "V"], dtype=np.int64)
    m = match_beats(ref, det, rec.fs, tolerance_s)
    if plot_dir is not None:
        from edge.evaluate.plots import plot_events

        plot_events(rec.signal[:, 0], rec.fs, det, ref, Path(plot_dir) / f"{rec.name}-pvc.png",
                    title=f"{rec.name}: V beats detected (top) vs reference (bottom), first 60 s",
                    max_seconds=60)
    labels: dict[str, int] = {}
    for b in beats:
        labels[b.label] = labels.get(b.label, 0) + 1
    return m, _row(rec.name, m, reference_v=int(ref.size), beats=len(beats), labels=labels)


def evaluate_pvc(paths: list[str], config: EdgeConfig, channel: str | None = None,
                 tolerance_s: float = 0.150, models: ModelSet | None = None,
                 plot_dir: str | Path | None = None,
                 on_record: OnRecord | None = None) -> dict[str, Any]:
    """Per-record and gross V-beat TP/FP/FN, ``se`` and ``ppv`` (in ``total``)."""
    models = models or ModelSet.from_config(config)
    if models.beat is None:
        raise RecordFormatError("PVC evaluation needs a beat model "
                                "(inference.beat_model is empty)")
    rows = []
    total = BeatMatch(0, 0, 0)
    for p in each(paths, on_record):
        m, row = pvc_record(p, config, models, channel, tolerance_s, plot_dir)
        rows.append(row)
        total = total + m
    model = models.beat.model
    return {"task": "pvc", "tolerance_s": tolerance_s, "model": model.name,
            "model_version": model.version, "backend": model.backend_name,
            "precision": model.precision, "records": rows, "total": _row("total", total)}
