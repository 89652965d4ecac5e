"""Memory and CPU of the real daemon (``edge run``) for 1 and 8 patients.

Each patient is two replayed streams of one device: an ECG (a MIT-BIH DS1
record, lead MLII, 360 Hz) and a PPG (BIDMC record 01, PLETH, 125 Hz, repeated
to the ECG's length), written once as trace files so that the daemon reads
them the way it reads any trace (no WFDB reader, no pandas in the daemon).
Every detector and model runs; episodes go to the outbox and are synced to
the local FHIR test backend (a real HTTP server process).

The daemon runs as a child process at ``speed`` x real time for ``seconds``;
its peak RSS is the kernel's high-water mark of that process (``VmHWM`` in
``/proc/PID/status``, read until it exits, drain included). ``ru_maxrss`` from
``os.wait4`` is not used: Linux carries the high-water mark of the forking
parent across ``exec``, so a child of a large benchmark process would report
the parent's peak. RSS is sampled every second (growth after warm-up), and the
child's CPU time while streaming gives the CPU one patient costs at real time.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.clock import VirtualClock
from edge.errors import RecordFormatError
from edge.sources.replay import RecordingSource
from edge.trace.format import TraceWriter
from edge.trace.recordings import Recording, data_dir, load_csv, load_wfdb

#: DS1 records of the inter-patient split (training side): patients 1..8 of the benchmark.
DS1_RECORDS = ("208", "101", "106", "109", "118", "119", "201", "203")
_PPG_FS = 125.0

Progress = Callable[[str], None]


def _ecg(i: int, seconds: float) -> Recording:
    path = data_dir() / "mitdb-ds1" / DS1_RECORDS[i % len(DS1_RECORDS)]
    if not path.with_suffix(".hea").exists():
        raise RecordFormatError(f"no record at {path}: set EDGE_DATA_DIR to the recordings")
    rec = load_wfdb(path, annotator=None)
    n = min(rec.n_samples, int(seconds * rec.fs))
    return Recording(rec.name, rec.fs, rec.channels, rec.signal[:n])


def _ppg(seconds: float) -> Recording:
    path = data_dir() / "bidmc" / "bidmc_01_Signals.csv"
    rec = load_csv(path, _PPG_FS, column="PLETH", unit="au")
    n = int(seconds * rec.fs)
    reps = -(-n // rec.n_samples)
    return Recording(rec.name, rec.fs, rec.channels, np.tile(rec.signal, (reps, 1))[:n])


async def _write(rec: Recording, device: str, stream: str, out: Path) -> None:
    src = RecordingSource(rec, device=device, stream=stream, clock=VirtualClock(start_wall=0.0))
    with TraceWriter(out, {"source": f"bench:{rec.name}", "start_wall": 0.0}) as writer:
        async with src:
            async for item in src:
                writer.write(item)


def write_patients(workdir: Path, patients: int, seconds: float) -> list[tuple[Path, Path]]:
    """Trace files (ECG, PPG) of ``patients`` patients, ``seconds`` of signal each."""
    ppg = _ppg(seconds)
    out = []
    for i in range(patients):
        device = f"bed-{i + 1}"
        ecg_path, ppg_path = workdir / f"{device}-ecg.vetrace", workdir / f"{device}-ppg.vetrace"
        if not ecg_path.exists():
            asyncio.run(_write(_ecg(i, seconds), device, "ecg", ecg_path))
        if not ppg_path.exists():
            asyncio.run(_write(ppg, device, "ppg", ppg_path))
        out.append((ecg_path, ppg_path))
    return out


def write_config(workdir: Path, traces: list[tuple[Path, Path]], speed: float,
                 sync_url: str | None, token: Path | None) -> Path:
    lines = [f'[store]\npath = "{workdir / f"outbox-{len(traces)}.sqlite3"}"\n',
             "[ops]\nmetrics_port = -1\n"]
    if sync_url and token:
        lines.append(f'[sync]\nurl = "{sync_url}"\n[auth]\nmode = "bearer"\n'
                     f'token_file = "{token}"\n')
    for ecg, ppg in traces:
        for path in (ecg, ppg):
            lines.append(f'[[sources]]\ntype = "replay"\npath = "{path}"\nspeed = {speed}\n')
    cfg = workdir / f"edge-{len(traces)}.toml"
    cfg.write_text("".join(lines))
    return cfg


def _proc_rss_mb(pid: int, field: str = "VmRSS") -> float | None:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of process ``pid`` in MB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loaded(pid: int, names: tuple[str, ...]) -> list[str]:
    """Which of the packages ``names`` have a shared object mapped in process ``pid``."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return []
    return [n for n in names if f"/site-packages/{n}/" in maps]


def run_daemon(config: Path, seconds: float, patients: int, speed: float,
               progress: Progress | None = None) -> dict[str, Any]:
    """Run ``edge run --config`` for ``seconds`` of streaming; its memory, CPU and stop."""
    cmd = [sys.executable, "-m", "edge", "-v", "run", "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    started = time.monotonic()
    for line in proc.stderr:  # the daemon logs "monitoring N source(s)" once it streams
        if "monitoring" in line:
            break
    else:
        proc.wait()
        raise RecordFormatError(f"the daemon stopped before streaming (exit {proc.returncode})")
    ready = time.monotonic()

    def drain() -> None:  # keep reading the log so the daemon never blocks on a full pipe
        for _ in proc.stderr or ():
            pass

    threading.Thread(target=drain, daemon=True).start()
    cpu_ready = _proc_cpu_s(proc.pid) or 0.0
    samples: list[tuple[float, float]] = []
    while (t := time.monotonic() - ready) < seconds and proc.poll() is None:
        rss = _proc_rss_mb(proc.pid)
        if rss is not None:
            samples.append((t, rss))
        if progress is not None:
            progress(f"{patients} patient(s): {t:.0f}/{seconds:.0f} s, RSS {rss or 0:.0f} MB")
        time.sleep(1.0)
    loaded = _loaded(proc.pid, ("pandas", "matplotlib", "tensorflow", "wfdb", "scipy",
                                "onnxruntime", "ai_edge_litert", "pydantic_core"))
    streamed = time.monotonic() - ready
    peak = _proc_rss_mb(proc.pid, "VmHWM") or 0.0
    proc.send_signal(signal.SIGTERM)
    running = os.WEXITED | os.WNOHANG | os.WNOWAIT  # poll, do not reap yet
    while os.waitid(os.P_PID, proc.pid, running) is None:  # draining: the peak may rise
        peak = max(peak, _proc_rss_mb(proc.pid, "VmHWM") or 0.0)
        time.sleep(0.05)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu_stream = usage.ru_utime + usage.ru_stime - cpu_ready
    warm = [r for t, r in samples if t >= seconds / 3]
    return {
        "patients": patients,
        "streams": 2 * patients,
        "speed": speed,
        "startup_seconds": round(ready - started, 2),
        "streamed_seconds": round(streamed, 1),
        "peak_rss_mb": round(peak, 1),
        "rss_after_warmup_mb": round(warm[0], 1) if warm else None,
        "rss_end_mb": round(samples[-1][1], 1) if samples else None,
        "cpu_percent_per_patient_at_1x": round(
            100.0 * cpu_stream / (patients * speed * streamed), 3) if streamed > 0 else None,
        "native_libraries_loaded": loaded,
        "exit_code": proc.returncode,
    }


def bench_daemon_memory(patient_counts: tuple[int, ...] = (1, 8), seconds: float = 60.0,
                        speed: float = 20.0, workdir: Path | None = None, sync: bool = True,
                        progress: Progress | None = None) -> list[dict[str, Any]]:
    """Peak RSS and CPU of the real daemon for each number of patients in ``patient_counts``."""
    import tempfile

    from edge.sync.testserver import start_test_backend

    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if progress is not None:
            progress("writing patient traces")
        traces = write_patients(work, max(patient_counts), seconds * speed * 1.2)
        token = work / "backend-token"
        fd = os.open(token, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.write(fd, secrets.token_urlsafe(24).encode())
        os.close(fd)
        results = []
        for n in patient_counts:
            if sync:
                with start_test_backend(work / f"backend-{n}.sqlite3", auth="bearer",
                                        bearer_token_file=str(token)) as backend:
                    cfg = write_config(work, traces[:n], speed, backend.url, token)
                    results.append(run_daemon(cfg, seconds, n, speed, progress))
            else:
                cfg = write_config(work, traces[:n], speed, None, None)
                results.append(run_daemon(cfg, seconds, n, speed, progress))
        return results
