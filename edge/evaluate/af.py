"""AF detection quality on WFDB records with ``(AFIB`` rhythm annotations, through the pipeline.

In the style of ANSI/AAMI EC57 (AF detection, section 4.3): a reference AF
episode is detected when a detected AF episode overlaps it, a detected
episode is true when it overlaps a reference one (episode sensitivity and
positive predictivity); duration sensitivity is the fraction of reference AF
time covered by detections, duration positive predictivity the fraction of
detected AF time that is reference AF. Totals are gross (summed over
records). Reference rhythm: ``+`` annotations whose aux text starts with
``(AFIB``; any other rhythm label ends AF. Each row also gives the onset and
offset error of the detected reference episodes (share within 10 s), the
``af_burst`` findings (shorter irregular runs, not alarms) and how many short
reference episodes they or an episode found, and ``no_reference_af`` for a
record without AF (where every detected episode is false). ``--plot`` draws
the RR tachogram with the reference and detected AF spans.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clock import VirtualClock
from edge.config import EdgeConfig
from edge.detect.af import AF_BURST, AF_EPISODE
from edge.detect.models import ModelSet, model_processor_factory
from edge.errors import RecordFormatError
from edge.evaluate.progress import OnRecord, each
from edge.pipeline import Output, Pipeline
from edge.sources.open import DEFAULT_START_WALL
from edge.sources.replay import RecordingSource
from edge.trace.recordings import Recording, load_wfdb
from edge.types import Beat, Episode

__all__ = ["evaluate_af", "reference_af_intervals", "replay_with_models", "score_row",
           "score_spans"]


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


#: Onset / offset of a detected episode count as accurate within this many seconds
#: of the reference (issue #14; CPSC 2021 scores onsets and offsets within +/- 1 beat
#: or 3 s of tolerance bands, wider bands for RR-window detectors).
ONSET_TOLERANCE_S = 10.0


def score_spans(ref: list[tuple[int, int]], det: list[tuple[int, int]], fs: float,
                min_duration_s: float, bursts: list[tuple[int, int]] | None = None,
                ) -> dict[str, float]:
    """Episode and duration counts of detected AF ``det`` against reference AF ``ref``.

    ``bursts``: the shorter ``af_burst`` findings; they never count as AF episodes
    here (they are not alarms), only in ``bursts`` / ``bursts_true`` and in
    ``ref_short_found`` (reference episodes shorter than ``min_duration_s`` that an
    episode or a burst overlaps). Onset / offset errors are taken for each true
    detected episode: the distance to the nearest reference onset / offset among
    the reference episodes it overlaps.
    """
    bursts = bursts or []
    long_ref = [r for r in ref if (r[1] - r[0]) / fs >= min_duration_s]
    short_ref = [r for r in ref if (r[1] - r[0]) / fs < min_duration_s]
    onset_ok = offset_ok = matched = 0
    onset_err: list[float] = []
    offset_err: list[float] = []
    for d in det:
        hit = [r for r in ref if _overlap([r], [d]) > 0]
        if not hit:
            continue
        matched += 1
        # the nearest reference onset / offset among the reference episodes it covers
        # (one detection may span several reference episodes split by short flutter)
        e_on = min(abs(d[0] - r[0]) for r in hit) / fs
        e_off = min(abs(d[1] - r[1]) for r in hit) / fs
        onset_err.append(e_on)
        offset_err.append(e_off)
        onset_ok += e_on <= ONSET_TOLERANCE_S
        offset_ok += e_off <= ONSET_TOLERANCE_S
    return {
        "ref_episodes": len(ref),
        "ref_detected": sum(1 for r in ref if _overlap([r], det) > 0),
        "ref_episodes_min_duration": len(long_ref),
        "ref_detected_min_duration": sum(1 for r in long_ref if _overlap([r], det) > 0),
        "ref_short": len(short_ref),
        "ref_short_found": sum(1 for r in short_ref if _overlap([r], det + bursts) > 0),
        "det_episodes": len(det),
        "det_true": sum(1 for d in det if _overlap([d], ref) > 0),
        "bursts": len(bursts),
        "bursts_true": sum(1 for d in bursts if _overlap([d], ref) > 0),
        "matched": matched,
        "onset_within_tol": onset_ok,
        "offset_within_tol": offset_ok,
        "onset_error_s_sum": float(sum(onset_err)),
        "offset_error_s_sum": float(sum(offset_err)),
        "ref_af_s": sum(e - s for s, e in ref) / fs,
        "det_af_s": sum(e - s for s, e in det) / fs,
        "overlap_s": _overlap(ref, det) / fs,
    }


def score_row(name: str, c: dict[str, float]) -> dict[str, Any]:
    """A per-record (or total) row: counts plus Se / +P at episode and duration level."""
    out: dict[str, Any] = {"record": name, **{k: (round(v, 3) if isinstance(v, float) else v)
                                              for k, v in c.items()}}
    out["no_reference_af"] = c["ref_episodes"] == 0
    out["se"] = round(_ratio(c["ref_detected"], c["ref_episodes"]), 6)
    out["se_min_duration"] = round(_ratio(c["ref_detected_min_duration"],
                                          c["ref_episodes_min_duration"]), 6)
    out["ppv"] = round(_ratio(c["det_true"], c["det_episodes"]), 6)
    out["duration_se"] = round(_ratio(c["overlap_s"], c["ref_af_s"]), 6)
    out["duration_ppv"] = round(_ratio(c["overlap_s"], c["det_af_s"]), 6)
    m = c.get("matched", 0)
    out["onset_within_10s"] = round(c.get("onset_within_tol", 0) / m, 6) if m else None
    out["offset_within_10s"] = round(c.get("offset_within_tol", 0) / m, 6) if m else None
    out["onset_error_s_mean"] = round(c.get("onset_error_s_sum", 0.0) / m, 1) if m else None
    out["offset_error_s_mean"] = round(c.get("offset_error_s_sum", 0.0) / m, 1) if m else None
    out["short_se"] = round(_ratio(c.get("ref_short_found", 0), c.get("ref_short", 0)), 6)
    return out


def plot_af_tachogram(beats: list[Beat], fs: float, ref: list[tuple[int, int]],
                      det: list[tuple[int, int]], bursts: list[tuple[int, int]],
                      out_png: str | Path, title: str) -> Path:
    """RR tachogram with reference AF (green, below) and detected AF / bursts (above)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edge.evaluate.plots import save_figure

    idx = np.array([b.index for b in beats], dtype=np.float64)
    labels = [b.label or "Q" for b in beats]
    fig, ax = plt.subplots(figsize=(16.0, 4.0), dpi=100)
    if idx.size > 1:
        t = idx[1:] / fs / 60.0
        rr = np.diff(idx) / fs
        ectopic = np.array([labels[k] != "N" or labels[k + 1] != "N"
                            for k in range(len(rr))])
        ax.plot(t, rr, ".", ms=2, color="0.25", label="RR (N-N)")
        if ectopic.any():
            ax.plot(t[ectopic], rr[ectopic], ".", ms=3, color="tab:orange",
                    label="RR next to a non-N beat")
        top = float(min(np.percentile(rr, 99.5) * 1.3, 3.0))
    else:
        top = 2.0
    for spans, color, y0, y1, name in ((ref, "tab:green", 0.0, 0.5, "reference AF"),
                                       (det, "tab:red", 0.5, 1.0, "detected AF"),
                                       (bursts, "tab:purple", 0.5, 1.0, "af_burst")):
        for k, (a, b) in enumerate(spans):
            ax.axvspan(a / fs / 60.0, b / fs / 60.0, ymin=y0, ymax=y1, color=color,
                       alpha=0.25, label=name if k == 0 else None)
    ax.set_ylim(0.0, top)
    ax.set_xlabel("time (min)")
    ax.set_ylabel("RR interval (s)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, out_png)


def af_record(path: str | Path, config: EdgeConfig, models: ModelSet,
              channel: str | None = None, plot_dir: str | Path | None = None,
              ) -> tuple[dict[str, float], dict[str, Any]]:
    rec = load_wfdb(path, channel=channel, annotator="atr")
    if not rec.ann_index.size:
        raise RecordFormatError(f"{path}: no 'atr' annotations to compare against")
    ref = reference_af_intervals(rec)
    beats, episodes = asyncio.run(replay_with_models(rec, config, models))
    det = sorted((ep.onset_index, ep.offset_index) for ep in episodes if ep.kind == AF_EPISODE)
    bursts = sorted((ep.onset_index, ep.offset_index) for ep in episodes
                    if ep.kind == AF_BURST)
    fs = rec.fs
    if plot_dir is not None:
        plot_af_tachogram(beats, fs, ref, det, bursts, Path(plot_dir) / f"{rec.name}-af.png",
                          f"{rec.name}: RR tachogram; reference AF (green, lower half), "
                          f"detected AF (red) and af_burst (purple) (upper half)")
    counts = score_spans(ref, det, fs, config.af.min_duration_s, bursts)
    counts["minutes"] = rec.signal.shape[0] / fs / 60.0
    return counts, score_row(rec.name, counts)


def evaluate_af(paths: list[str], config: EdgeConfig, channel: str | None = None,
                models: ModelSet | None = None,
                plot_dir: str | Path | None = None,
                on_record: OnRecord | None = None) -> dict[str, Any]:
    """Per-record and gross AF episode and duration Se / +P (``total.se``, ``total.ppv``
    are episode level; ``duration_se``, ``duration_ppv`` duration level;
    ``se_min_duration`` is episode Se over the reference episodes that last at least
    ``[af] min_duration_s``, the shortest AF the detector reports by design;
    ``records`` holds one row per record)."""
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
            "records": rows, "total": score_row("total", total)}

