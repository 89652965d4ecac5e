"""The daemon runs configured sources until SIGTERM, then drains and stops cleanly."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest


def _config(tmp_path, data_dir, **extra):
    rec = data_dir / "mitdb" / "100"
    text = (f'[store]\npath = "{tmp_path / "outbox.sqlite3"}"\n'
            f'[[sources]]\ntype = "replay"\npath = "{rec}"\nspeed = 200.0\nloop = true\n'
            f'device = "bed-7"\n')
    p = tmp_path / "edge.toml"
    p.write_text(text)
    return p


def _wait_for(proc, text: str, timeout: float = 60.0) -> list[str]:
    """Read the daemon's stderr until a line contains ``text``; return the lines read."""
    import threading

    lines: list[str] = []
    found = threading.Event()

    def reader():
        for line in proc.stderr:
            lines.append(line)
            if text in line:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    assert found.wait(timeout), f"daemon never logged {text!r}: {lines[-5:]}"
    return lines


def test_sigterm_drains_the_pipeline_and_exits_cleanly(tmp_path, data_dir):
    cfg = _config(tmp_path, data_dir)
    cfg.write_text(cfg.read_text() + "[ops]\nmetrics_port = 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    early = _wait_for(proc, "monitoring")
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    err = "".join(early) + err
    assert proc.returncode == 0, err
    assert "stopped after" in out
    assert "stop requested" in err
    outbox = tmp_path / "outbox.sqlite3"
    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o600


def test_a_busy_metrics_port_is_one_line_and_monitoring_goes_on(tmp_path, data_dir):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = _config(tmp_path, data_dir)
        cfg.write_text(cfg.read_text() + f"[ops]\nmetrics_port = {port}\n")
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            early = _wait_for(proc, "monitoring")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    log = "".join(early) + err
    assert proc.returncode == 0, log
    off = [line for line in log.splitlines() if "metrics endpoint off" in line]
    assert len(off) == 1 and str(port) in off[0]
    assert "Traceback" not in log


def test_a_config_without_sources_is_refused_with_one_line(tmp_path):
    p = tmp_path / "edge.toml"
    p.write_text("")
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(p)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "no [[sources]] configured" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("body,message", [
    ('[[sources]]\ntype = "carrier-pigeon"\n', "unknown source type 'carrier-pigeon'"),
    ('[[sources]]\ntype = "replay"\n', "a replay source needs 'path'"),
])
def test_bad_sources_are_refused_before_start(tmp_path, body, message):
    p = tmp_path / "edge.toml"
    p.write_text(body)
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(p)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and message in proc.stderr


def _start(cfg, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_the_daemon_speaks_sd_notify_over_a_real_datagram_socket(tmp_path, data_dir):
    import socket

    cfg = _config(tmp_path, data_dir)
    cfg.write_text(cfg.read_text() + "[ops]\nmetrics_port = -1\nstatus_every_s = 0.5\n")
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    proc = _start(cfg, {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "1000000"})
    got: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                any(m.startswith("READY=1") for m in got)
                and got.count("WATCHDOG=1") >= 2
                and any(m.startswith("STATUS=") for m in got)):
            got.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while "STOPPING=1" not in got and time.monotonic() < deadline:
            got.append(sock.recv(4096).decode())
    finally:
        out, err = proc.communicate(timeout=30)
        sock.close()
    assert got[0].startswith("READY=1")
    assert got.count("WATCHDOG=1") >= 2
    assert "STOPPING=1" in got
    status = [m for m in got if m.startswith("STATUS=")]
    assert status and "source(s)" in status[-1]
    assert proc.returncode == 0, err


def test_metrics_are_served_on_localhost_while_running(tmp_path, data_dir):
    import re
    import urllib.request

    cfg = _config(tmp_path, data_dir)
    cfg.write_text(cfg.read_text() + "[ops]\nmetrics_port = 0\n")
    proc = _start(cfg)
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
            url = m.group(1) if m else None
        assert url, "the daemon did not report its metrics address"
        time.sleep(2.0)
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        status = subprocess.run([sys.executable, "-m", "edge", "status", "--url", url, "--json"],
                                capture_output=True, text=True, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert 'edge_source_samples_total{source="replay"}' in body
    samples = float(re.search(r'edge_source_samples_total\{source="replay"\} (\S+)',
                              body).group(1))
    assert samples > 0
    assert "edge_block_latency_seconds_bucket" in body
    assert 'edge_inference_latency_seconds_count{backend="onnxruntime",model="beat_nsv"' in body
    assert "edge_outbox_pending" in body
    import json

    summary = json.loads(status.stdout)
    assert summary["sources"]["replay"]["samples"] > 0


def test_status_without_a_daemon_is_one_clear_line():
    proc = subprocess.run([sys.executable, "-m", "edge", "status", "--url",
                           "http://127.0.0.1:9/metrics"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "no daemon answering" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt,check", [
    ("json", lambda line: __import__("json").loads(line)["level"] in ("info", "warning")),
    ("journal", lambda line: line.startswith(("<6>", "<4>"))),
])
def test_log_lines_come_in_the_chosen_format(tmp_path, data_dir, fmt, check):
    cfg = _config(tmp_path, data_dir)
    cfg.write_text(cfg.read_text() + "[ops]\nmetrics_port = -1\n")
    env = {**os.environ, "EDGE_LOG_FORMAT": fmt}
    proc = subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    early = _wait_for(proc, "monitoring")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    lines = [line for line in ("".join(early) + err).splitlines() if line.strip()]
    assert lines and all(check(line) for line in lines), lines[:3]


def test_a_stalled_pipeline_stops_the_watchdog_pings(tmp_path, data_dir, monkeypatch, caplog):
    """A sink that never returns stalls processing: pings stop, one error line says why."""
    import asyncio
    import logging
    import socket

    from edge.config import load_config
    from edge.daemon import Daemon
    from edge.ops.sdnotify import Notifier

    cfg_path = _config(tmp_path, data_dir)
    cfg_path.write_text(cfg_path.read_text()
                        + "[ops]\nmetrics_port = -1\nstall_s = 1.0\nstatus_every_s = 60\n")
    sock_path = str(tmp_path / "n.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.setblocking(False)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s

    class HangingSink:
        async def handle(self, item):
            await asyncio.Event().wait()  # e.g. a storage call that never returns

        async def close(self):
            pass

    async def scenario():
        daemon = Daemon(load_config(cfg_path), Notifier(sock_path))
        daemon.pipeline.sinks.append(HangingSink())
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(3.0)
        pings_before = _drain(sock)
        await asyncio.sleep(1.0)
        pings_after = _drain(sock)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return pings_before, pings_after

    import contextlib

    with caplog.at_level(logging.ERROR):
        before, after = asyncio.run(scenario())
    sock.close()
    assert "READY=1" in before[0]
    assert after.count("WATCHDOG=1") == 0
    assert "pipeline stalled" in caplog.text


def _drain(sock):
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_sighup_reloads_thresholds_and_keeps_streaming(tmp_path, data_dir):
    cfg = _config(tmp_path, data_dir)
    cfg.write_text(cfg.read_text() + "[ops]\nmetrics_port = -1\n")
    proc = _start(cfg)
    early = _wait_for(proc, "monitoring")
    time.sleep(2.0)  # let streams start: reload applies to their processors
    cfg.write_text(cfg.read_text() + "[rate_rules]\ntachy_bpm = 130.0\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    cfg.write_text(cfg.read_text() + "[rate_rules\n")  # broken: must be refused
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    err = "".join(early) + err
    assert proc.returncode == 0, err
    import re

    m = re.search(r"configuration reloaded \((\d+) processors updated\)", err)
    assert m and int(m.group(1)) >= 2  # at least heart rate and the rate rules
    assert "reload refused, keeping the running configuration" in err


def test_the_daemon_delivers_episodes_to_the_backend_while_running(tmp_path, data_dir):
    """Replay 208 (a false asystole and PVC runs make episodes) into a real test backend."""
    import json as _json

    from edge.sync.testserver import start_test_backend

    (tmp_path / "token").write_text("s3cret-token\n")
    os.chmod(tmp_path / "token", 0o600)
    with start_test_backend(tmp_path / "backend.sqlite3", auth="bearer",
                            bearer_token_file=str(tmp_path / "token")) as be:
        rec = data_dir / "mitdb" / "208"
        cfg = tmp_path / "edge.toml"
        cfg.write_text(
            f'[store]\npath = "{tmp_path / "outbox.sqlite3"}"\n'
            f'[ops]\nmetrics_port = -1\n'
            f'[sync]\nurl = "{be.url}"\npoll_interval_s = 0.5\n'
            f'[auth]\nmode = "bearer"\ntoken_file = "{tmp_path / "token"}"\n'
            f'[[sources]]\ntype = "replay"\npath = "{rec}"\nspeed = 400.0\n')
        proc = _start(cfg)
        out, err = proc.communicate(timeout=120)  # the record ends: the daemon stops by itself
        assert proc.returncode == 0, err
        stored = subprocess.run([sys.executable, "-m", "edge", "outbox", "status", "--outbox",
                                 str(tmp_path / "outbox.sqlite3"), "--json"],
                                capture_output=True, text=True, timeout=60)
        status = _json.loads(stored.stdout)
    assert "s3cret" not in err  # secrets never logged
    assert status["queue_depth"] == 0
    assert status["delivered_total"] >= 1
