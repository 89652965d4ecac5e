"""AF detection quality on WFDB records with ``(AFIB`` rhythm annotations, through the pipeline.

In the style of ANSI/AAMI EC57 (AF detection, section 4.3): a reference AF
episode is detected when a detected AF episode overlaps it, a detected
episode is true when it overlaps a reference one (episode sensitivity and
positive predictivity); duration sensitivity is the fraction of reference AF
time covered by detections, duration positive predictivity the fraction of
detected AF time that is reference AF. Totals are gross (summed over
records). Reference rhythm: ``+`` annotations whose aux text starts with
``(AFIB``; any other rhythm label ends AF.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clock import VirtualClock
from edge.config import EdgeConfig
from edge.detect.models import AF_EPISODE, ModelSet, model_processor_factory
from edge.errors import RecordFormatError
from edge.evaluate.progress import OnRecord, each
from edge.pipeline import Output, Pipeline
from edge.sources.open import DEFAULT_START_WALL
from edge.sources.replay import RecordingSource
from edge.trace.recordings import Recording, load_wfdb
from edge.types import Beat, Episode

__all__ = ["evaluate_af", "reference_af_intervals", "replay_with_models"]


def reference_af_intervals(rec: Recording) -> list[tuple[int, int]]:
    """``[start, end)`` sample intervals of reference AF from the rhythm annotations."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for idx, sym, aux in zip(rec.ann_index, rec.ann_symbol, rec.ann_aux, strict=True):
        if sym != "+" or not aux.startswith("("):
            continue
        if aux.startswith("(AFIB"):
            if start is None:
                start = int(idx)
        elif start is not None:
            out.append((start, int(idx)))
            start = None
    if start is not None:
        out.append((start, int(rec.signal.shape[0])))
    return out


@dataclass
class _Collect:
    beats: list[Beat] = field(default_factory=list)
    episodes: dict[str, Episode] = field(default_factory=dict)

    async def handle(self, item: Output) -> None:
        if isinstance(item, Beat):
            self.beats.append(item)
        elif isinstance(item, Episode):
            self.episodes[item.id] = item

    async def close(self) -> None:
        return None


async def replay_with_models(rec: Recording, config: EdgeConfig,
                             models: ModelSet) -> tuple[list[Beat], list[Episode]]:
    """Replay a recording through the standard chain with the models; beats and episodes."""
    src = RecordingSource(rec, block_s=config.pipeline.replay_block_s,
                          clock=VirtualClock(start_wall=rec.start_wall or DEFAULT_START_WALL))
    sink = _Collect()
    pipeline = Pipeline(model_processor_factory(config, models), [sink], config.pipeline,
                        getattr(src, "clock", None))
    await pipeline.run(src)
    return sink.beats, list(sink.episodes.values())


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    total = 0
    for s1, e1 in a:
        for s2, e2 in b:
            total += max(0, min(e1, e2) - max(s1, s2))
    return total


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 else num / den


def _row(name: str, c: dict[str, float], fs: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"record": name, **{k: (round(v, 3) if isinstance(v, float) else v)
                                              for k, v in c.items()}}
    out["se"] = round(_ratio(c["ref_detected"], c["ref_episodes"]), 6)
    out["se_min_duration"] = round(_ratio(c["ref_detected_min_duration"],
                                          c["ref_episodes_min_duration"]), 6)
    out["ppv"] = round(_ratio(c["det_true"], c["det_episodes"]), 6)
    out["duration_se"] = round(_ratio(c["overlap_s"], c["ref_af_s"]), 6)
    out["duration_ppv"] = round(_ratio(c["overlap_s"], c["det_af_s"]), 6)
    return out


def af_record(path: str | Path, config: EdgeConfig, models: ModelSet,
              channel: str | None = None, plot_dir: str | Path | None = None,
              ) -> tuple[dict[str, float], dict[str, Any]]:
    rec = load_wfdb(path, channel=channel, annotator="atr")
    if not rec.ann_index.size:
        raise RecordFormatError(f"{path}: no 'atr' annotations to compare against")
    ref = reference_af_intervals(rec)
    _, episodes = asyncio.run(replay_with_models(rec, config, models))
    det = sorted((ep.onset_index, ep.offset_index) for ep in episodes if ep.kind == AF_EPISODE)
    fs = rec.fs
    if plot_dir is not None:
        from edge.evaluate.plots import plot_events

        plot_events(rec.signal[:, 0], fs, [(s, e, "AF") for s, e in det],
                    [(s, e, "AF") for s, e in ref], Path(plot_dir) / f"{rec.name}-af.png",
                    title=f"{rec.name}: AF detected (top) vs reference (bottom)")
    # Reference episodes at least as long as the clinical definition the detector
    # applies (AfConfig.min_duration_s, 30 s): reported beside the all-episode figure.
    long_ref = [r for r in ref if (r[1] - r[0]) / fs >= config.af.min_duration_s]
    counts = {
        "ref_episodes": len(ref),
        "ref_detected": sum(1 for r in ref if _overlap([r], det) > 0),
        "ref_episodes_min_duration": len(long_ref),
        "ref_detected_min_duration": sum(1 for r in long_ref if _overlap([r], det) > 0),
        "det_episodes": len(det),
        "det_true": sum(1 for d in det if _overlap([d], ref) > 0),
        "ref_af_s": sum(e - s for s, e in ref) / fs,
        "det_af_s": sum(e - s for s, e in det) / fs,
        "overlap_s": _overlap(ref, det) / fs,
        "minutes": rec.signal.shape[0] / fs / 60.0,
    }
    return counts, _row(rec.name, counts)


def evaluate_af(paths: list[str], config: EdgeConfig, channel: str | None = None,
                models: ModelSet | None = None,
                plot_dir: str | Path | None = None,
                on_record: OnRecord | None = None) -> dict[str, Any]:
    """Per-record and gross AF episode and duration Se / +P (``total.se``, ``total.ppv``
    are episode level; ``duration_se``, ``duration_ppv`` duration level;
    ``se_min_duration`` is episode Se over the reference episodes that last at least
    ``[af] min_duration_s``, the shortest AF the detector reports by design)."""
    models = models or ModelSet.from_config(config)
    if models.af is None:
        raise RecordFormatError("AF evaluation needs an AF model (inference.af_model is empty)")
    rows = []
    total: dict[str, float] = {}
    for p in each(paths, on_record):
        counts, row = af_record(p, config, models, channel, plot_dir)
        rows.append(row)
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    m = models.af.model
    return {"task": "af", "model": m.name, "model_version": m.version,
            "backend": m.backend_name, "precision": m.precision,
            "records": rows, "total": _row("total", total)}

