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


def test_sigterm_drains_the_pipeline_and_exits_cleanly(tmp_path, data_dir):
    cfg = _config(tmp_path, data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after" in out
    assert "stop requested" in err
    outbox = tmp_path / "outbox.sqlite3"
    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o600


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
