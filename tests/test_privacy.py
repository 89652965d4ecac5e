"""No patient data in logs: a full demo run at debug level, scanned line by line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys


def test_a_full_demo_run_logs_no_patient_data(tmp_path):
    (tmp_path / "edge.toml").write_text(
        '[fhir]\npatient_identifier_value = "MRN-PSEUDO-7731"\n'
        '[patients.bed7-alice]\ndevices = ["demo-wearable"]\n')
    env = {**os.environ, "EDGE_LOG_FORMAT": "json"}
    proc = subprocess.run([sys.executable, "-m", "edge", "-vv", "demo", "--fast", "--json",
                           "--config", "edge.toml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert lines, "expected debug log lines"
    messages = [m["msg"] for m in lines]
    text = "\n".join(messages)
    # identifiers and pseudonyms from the configuration
    assert "MRN-PSEUDO-7731" not in text
    assert "bed7-alice" not in text
    # vital values: the heart rates the run measured never appear as numbers in a log line
    hr = summary["heart_rate_bpm"]
    for value in (hr["min"], hr["max"], hr["mean"]):
        assert not re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d])", text), value
    assert not re.search(r"\d\s*(bpm|/min|mmHg|mm\[Hg\])", text)
    # raw samples: no runs of decimal numbers
    assert not re.search(r"(-?\d+\.\d+[,\s]+){5,}", text)
    # HTTP libraries do not log request URLs (FHIR searches carry identifiers)
    assert not any(m["logger"].startswith(("httpx", "httpcore")) for m in lines)
