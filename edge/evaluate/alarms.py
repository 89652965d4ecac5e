"""False alarms per hour: replay alarm-free recordings through the live pipeline.

Records given here must be known to hold no alarm condition (clean sinus
rhythm, e.g. MIT-BIH 100, European ST-T excerpts, CPSC 2021 data_21_* (no
AF)): every urgent or warning episode raised on them counts as a false alarm
(info episodes are not alarms). The figure is alarms per hour of signal, per
record and pooled. Episodes are counted once per id (an ongoing episode that
is later ended is one alarm).

Accepts WFDB records (path without extension) and CSV files (``name.csv``
with the sample rate given in ``csv_fs`` or guessed from the folder:
``nstdb-118e-csv`` 360 Hz, ``edb-excerpts-csv`` 250 Hz).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.app import run_pipeline
from edge.config import EdgeConfig
from edge.evaluate.progress import OnRecord, each
from edge.sources.open import open_replay
from edge.sources.replay import TraceSource
from edge.types import Episode, Priority

CSV_RATES = {"nstdb-118e-csv": 360.0, "edb-excerpts-csv": 250.0}
ALARM_PRIORITIES = (Priority.URGENT, Priority.WARNING)


def _gated(episodes: list[Episode], rec: Any, config: EdgeConfig) -> list[Episode]:
    """Alarms left when an episode whose onset window is unusable (ECG SQI) is suppressed.

    What RateRules will do once it consults :class:`~edge.detect.quality.QualityTimeline`
    (the wiring is pending): computed here from the same recording, offline.
    """
    import numpy as np

    from edge.detect.quality import QualityTimeline, ecg_quality

    c = config.ecg_quality
    x = np.asarray(rec.signal[:, 0], dtype=np.float64)
    win, step = int(c.window_s * rec.fs), int(c.step_s * rec.fs)
    tl = QualityTimeline(c.usable_threshold)
    for i in range(0, max(1, x.size - win + 1), step):
        tl.add(i, i + win, ecg_quality(x[i:i + win], rec.fs, c).sqi)
    return [e for e in episodes if tl.usable(e.onset_index)]


async def _record(path: str | Path, config: EdgeConfig, csv_fs: float | None,
                  ) -> tuple[list[Episode], float, list[int], Any, dict[str, Any] | None]:
    p = Path(path)
    fs = csv_fs if p.suffix == ".csv" else None
    if p.suffix == ".csv" and fs is None:
        fs = CSV_RATES.get(p.parent.name)
    src = open_replay(p, fs=fs, block_s=config.pipeline.replay_block_s, annotator=None)
    stats, summary = await run_pipeline(src, config)
    rec = getattr(src, "recording", None)
    # a trace: the stream time it replayed (its damage, if any, is not counted)
    hours = (rec.duration_s if rec is not None else getattr(src, "seconds", 0.0)) / 3600.0
    damage = src.info.damage_report() if isinstance(src, TraceSource) else None
    return list(summary.episodes.values()), hours, list(summary.beat_index), rec, damage


def false_alarms(paths: str | Path | Sequence[str | Path], config: EdgeConfig | None = None,
                 csv_fs: float | None = None, quality_gate: bool = True,
                 plot_dir: str | Path | None = None,
                 on_record: OnRecord | None = None) -> dict[str, Any]:
    """Urgent + warning episodes per hour on alarm-free records (per record and total).

    ``by_priority`` / ``per_hour_by_priority`` count every episode (info findings
    such as ``af_burst`` too) by its final priority, per record and in total.

    With ``quality_gate`` each row and the total also give ``alarms_quality_gated``:
    the alarms left once alarms starting on an unusable ECG window are suppressed.
    ``plot_dir``: one PNG per record (first 60 s of signal with detected beats, plus
    every alarm episode shaded), via :func:`edge.evaluate.plots.plot_events`.
    """
    config = config or EdgeConfig()
    if isinstance(paths, str | Path):
        paths = [paths]
    rows = []
    n_total, n_gated, h_total = 0, 0, 0.0
    pri_total: dict[str, int] = {}
    for p in each(paths, on_record):
        episodes, hours, beats, rec, damage = asyncio.run(_record(p, config, csv_fs))
        alarms = [e for e in episodes if e.priority in ALARM_PRIORITIES]
        gated = _gated(alarms, rec, config) if quality_gate and rec is not None else alarms
        n_gated += len(gated)
        if plot_dir is not None and rec is not None:
            from edge.evaluate.plots import plot_events

            events: list[int | Episode] = [*beats, *alarms]
            plot_events(rec.signal[:, 0], rec.fs, events, None,
                        Path(plot_dir) / f"{Path(p).stem}.png",
                        f"{Path(p).name}: detected beats and alarms (first 60 s)",
                        max_seconds=60.0)
        by_kind: dict[str, int] = {}
        by_priority = {p.value: 0 for p in Priority}
        for e in alarms:
            by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
        for e in episodes:
            by_priority[e.priority.value] += 1
        for k, v in by_priority.items():
            pri_total[k] = pri_total.get(k, 0) + v
        # beats detected: a sanity check (no beats, no rate alarms: 0/h would mean nothing)
        rows.append({"record": Path(p).name, "hours": round(hours, 4), "beats": len(beats),
                     "alarms": len(alarms),
                     "alarms_per_hour": round(len(alarms) / hours, 3) if hours else None,
                     "by_kind": by_kind, "by_priority": by_priority,
                     "per_hour_by_priority": {k: round(v / hours, 3) if hours else None
                                              for k, v in by_priority.items()},
                     "alarms_quality_gated": len(gated),
                     "info_episodes": sum(1 for e in episodes if e.priority is Priority.INFO),
                     **({"trace": damage} if damage is not None else {})})
        n_total += len(alarms)
        h_total += hours
    return {"task": "false-alarms", "records": rows,
            "total": {"records": len(rows), "hours": round(h_total, 4), "alarms": n_total,
                      "alarms_per_hour": round(n_total / h_total, 3) if h_total else None,
                      "by_priority": pri_total,
                      "per_hour_by_priority": {k: round(v / h_total, 3) if h_total else None
                                               for k, v in pri_total.items()},
                      "alarms_quality_gated": n_gated,
                      "alarms_per_hour_quality_gated":
                          round(n_gated / h_total, 3) if h_total else None}}
