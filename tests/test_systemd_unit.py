"""The shipped systemd unit asks for what the daemon does, and no more."""

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "packaging" / "systemd" / "vitals-edge.service"


def _unit():
    cp = configparser.ConfigParser(strict=False, interpolation=None,
                                   comment_prefixes=("#",), empty_lines_in_values=False)
    cp.optionxform = str  # keep case
    cp.read_string(UNIT.read_text())
    return cp["Service"]


def test_the_unit_is_a_notify_service_with_a_watchdog_and_restart():
    s = _unit()
    assert s["Type"] == "notify"
    assert int(s["WatchdogSec"]) > 0
    assert s["Restart"] == "on-failure"
    assert "edge run --config" in s["ExecStart"]


def test_the_unit_runs_unprivileged_and_sandboxed():
    s = _unit()
    assert s["User"] == "vitals-edge"
    assert s["NoNewPrivileges"] == "true"
    assert s["ProtectSystem"] == "strict"
    assert s["StateDirectory"] == "vitals-edge" and s["StateDirectoryMode"] == "0700"
    assert s["CapabilityBoundingSet"] == "" and s["AmbientCapabilities"] == ""
    assert s["UMask"] == "0077"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_accepts_the_unit():
    out = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True,
                         text=True)
    # only complaints about the absent ExecStart binary are acceptable off-target
    bad = [line for line in out.stderr.splitlines()
           if line.strip() and "/opt/vitals-edge" not in line and "Documentation" not in line]
    assert bad == []
