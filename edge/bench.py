"""Pipeline benchmark: real-time factor, overhead over the bare detector, latency, memory.

Timings are ratios measured in one run against a baseline on the same data
(the machines are shared and noisy), never asserted in tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.app import run_pipeline
from edge.clock import VirtualClock
from edge.config import EdgeConfig
from edge.dsp.qrs import ecg_peaks
from edge.errors import RecordFormatError, TraceError
from edge.sources.open import DEFAULT_START_WALL, detect_format
from edge.sources.replay import RecordingSource
from edge.trace.format import read_trace
from edge.trace.recordings import Recording, data_dir, load_wfdb
from edge.types import Block

log = logging.getLogger(__name__)


def default_record() -> Path:
    """MIT-BIH 100 in the recordings folder (:func:`~edge.trace.recordings.data_dir`)."""
    path = data_dir() / "mitdb" / "100"
    if not path.with_suffix(".hea").exists():
        raise RecordFormatError(
            f"no record to benchmark at {path}: pass --record PATH (a 30-minute WFDB "
            "record) or set EDGE_DATA_DIR")
    return path


def load_for_bench(path: Path) -> tuple[Recording, dict[str, Any] | None]:
    """A WFDB record, or a trace's first waveform stream (its blocks end to end, damage
    skipped: a benchmark measures speed) with the trace's damage report."""
    if detect_format(path) != "trace":
        return load_wfdb(path, annotator=None), None
    info, items = read_trace(path)
    blocks = [b for b in items if isinstance(b, Block)]
    first = [b for b in blocks if blocks and b.key == blocks[0].key]
    if not first:
        raise TraceError(f"{path}: no readable stream in this trace to benchmark")
    if info.damage:
        log.warning("%s", info.damage_line(path))
    signal = np.concatenate([b.data for b in first]).astype(np.float32)
    return Recording(path.name, first[0].fs, first[0].channels, signal), info.damage_report()


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _bare_kernel_seconds(rec: Recording, block: int, config: EdgeConfig) -> float:
    """The detector alone, fed the same chunks the pipeline feeds it (its windows)."""
    from edge.dsp.qrs import QrsDetector

    det = QrsDetector(rec.fs, config.qrs)
    sig = rec.signal[:, 0]
    t0 = time.perf_counter()
    for start in range(0, sig.size, block):
        det.process(sig[start:start + block])
    det.flush()
    return time.perf_counter() - t0


def run_bench(record: str | Path | None = None, repeats: int = 3,
              config: EdgeConfig | None = None,
              on_repeat: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Speed, latency and this process's peak RSS; ``on_repeat(i)`` after each repeat."""
    cfg = config or EdgeConfig()
    path = Path(record) if record else default_record()
    rec, damage = load_for_bench(path)
    block = max(1, int(round(cfg.pipeline.replay_block_s * rec.fs)))
    window = max(1, int(round(cfg.pipeline.window_s * rec.fs)))
    pipe_times, kernel_times, latencies = [], [], []
    beats = 0
    for _ in range(repeats):
        kernel_times.append(_bare_kernel_seconds(rec, window, cfg))
        src = RecordingSource(rec, block_s=cfg.pipeline.replay_block_s,
                              clock=VirtualClock(start_wall=DEFAULT_START_WALL))
        t0 = time.perf_counter()
        stats, summary = asyncio.run(run_pipeline(src, cfg, keep_beats=False))
        pipe_times.append(time.perf_counter() - t0)
        latencies.extend(stats.latency_s)
        beats = summary.beats
        if on_repeat is not None:
            on_repeat(len(pipe_times))
    whole = time.perf_counter()
    ecg_peaks(rec.signal[:, 0], rec.fs, cfg.qrs)
    whole = time.perf_counter() - whole
    pipe = float(np.median(pipe_times))
    kernel = float(np.median(kernel_times))
    lat = np.asarray(latencies) * 1e3
    return {
        "record": str(path),
        "signal_seconds": round(rec.duration_s, 1),
        "fs": rec.fs,
        "block_samples": block,
        "repeats": repeats,
        "beats": beats,
        "pipeline_seconds": round(pipe, 4),
        "kernel_seconds": round(kernel, 4),
        "whole_array_kernel_seconds": round(whole, 4),
        "real_time_factor": round(rec.duration_s / pipe, 1),
        "overhead_ratio": round(pipe / kernel, 3),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 4),
                       "p99": round(float(np.percentile(lat, 99)), 4),
                       "max": round(float(lat.max()), 4)},
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "python": sys.version.split()[0],
        "machine": os.uname().machine,
        **({"trace": damage} if damage is not None else {}),
    }
