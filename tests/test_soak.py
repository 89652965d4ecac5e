"""A short soak through the real daemon path: pty, SQLite outbox, the HTTP test backend.

One simulated hour of MIT-BIH 208 (two device runs, each with a mid-run unplug and
re-plug, plus the run end) at 400 x real time, with corrupt and dropped frames and a
burst of backend errors (500, 429, a response lost after commit). ``tools/soak.py``
runs as a subprocess, with its own wall-time limit and a timeout here on top.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_a_short_soak_loses_nothing_and_leaks_nothing(tmp_path, data_dir):
    out = tmp_path / "soak"
    cmd = [sys.executable, str(REPO / "tools" / "soak.py"), "--hours", "1", "--speed", "400",
           "--seed", "3", "--disconnect-prob", "1", "--corrupt", "2e-3", "--drop", "1e-3",
           "--record", str(data_dir / "mitdb" / "208"), "--out", str(out), "--sample-s", "1",
           "--max-wall-s", "100", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
    assert proc.stdout, proc.stderr
    r = json.loads(proc.stdout)
    diag = json.dumps({k: v for k, v in r.items() if k != "timeline"}, indent=1)
    assert proc.returncode == 0, diag
    assert not r["timed_out"] and r["simulated_hours"] >= 1.0, diag
    assert r["runs"] == r["runs_acknowledged"] == 2, diag

    # events: every stored episode is on the backend exactly once
    ev = r["events"]
    assert ev["stored"] >= 1 and ev["lost"] == 0 and ev["duplicated"] == 0, diag
    assert ev["pending_final"] == 0 and ev["backend_duplicates"] == 0, diag
    assert r["faults"]["backend_error_bursts"] == 1, diag

    # samples: sent - injected losses == processed, and every injected loss is a gap
    sm, ft = r["samples"], r["faults"]
    assert ft["corrupt"] > 0 and ft["dropped"] > 0, diag
    assert sm["processed"] > 0 and sm["unaccounted"] == 0, diag
    assert sm["in_sequence_or_corrupt_gaps"] <= sm["lost_injected"], diag
    assert r["decode_errors"] == ft["corrupt"], diag  # one undecodable frame per corruption
    assert r["link"]["seq_lost"] == ft["corrupt"] + ft["dropped"], diag
    assert r["gaps"]["inserted_by_pipeline"] == 0, diag  # the source saw every gap itself

    # disconnects: two mid-run unplugs and one run end, each followed by a re-plug
    assert ft["mid_run_disconnects"] == 2 and ft["barriers_failed"] == 0, diag
    assert r["reconnects"] >= ft["disconnects_with_replug"] == 3, diag

    # no growth between the middle and the end; nothing left behind after the stop
    fds, tasks = r["fds"], r["tasks"]
    assert fds["end"] <= fds["middle"] + 2 and fds["max"] - fds["min"] <= 8, diag
    assert tasks["end"] <= tasks["middle"] + 1 and tasks["max"] - tasks["min"] <= 3, diag
    assert tasks["after_stop"] == 1, diag  # only the soak's own main task
    kept = [t for t in fds["opened_and_kept"] if ".onnxruntime" not in t]  # its global cache
    assert kept == [], diag
    assert r["processor_errors"] == {}, diag


def test_a_good_connection_resets_the_reconnect_backoff():
    """Found by the soak: the backoff was never reset, so after a few re-plugs every
    reconnect waited up to the 30 s cap (``reconnected ... after 5.3 s (attempt 1)``)."""
    import firmware_bridge as fb
    from edge.sources.backoff import Backoff
    from edge.sources.serial import SerialSource

    src = SerialSource("/nonexistent", backoff=Backoff(initial=0.5, maximum=30.0))
    for _ in range(6):  # six drops in a row: the next delay would be at the cap
        src.backoff.next_delay()
    src.feed(b"\x00\x01\x02garbage\x00")  # bytes, but no valid frame: not a good connection
    assert src.backoff.attempt == 6
    hello = fb.Hello(device_id=1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                     streams=(fb.Stream(1, fb.SampleFormat.INT16, 360.0,
                                        (fb.Channel("MLII", "mV", 0.005, 0.0),)),))
    src.feed(b"\x00" + fb.encode_frame(hello))
    assert src.link.hellos == 1 and src.backoff.attempt == 0
    assert src.backoff.next_delay() <= 0.5
