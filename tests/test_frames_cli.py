"""`edge frames decode` on a capture the virtual device wrote, and `edge serial` commands."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from edge.cli.main import cli
from edge.sim.serial_device import VirtualSerialDevice
from tests.serial_helpers import session, write_trace


def test_frames_decode_reads_a_capture_with_its_error_counts(tmp_path):
    trace = write_trace(tmp_path / "t.vetrace", seconds=5)
    cap = tmp_path / "cap.bin"
    device = VirtualSerialDevice(trace, speed=None, capture=cap, corrupt_frames={3, 10})
    asyncio.run(session(device))
    runner = CliRunner()
    lines = [json.loads(x) for x in runner.invoke(cli, ["frames", "decode", str(cap), "--json"],
                                                  catch_exceptions=False).output.splitlines()]
    frames, stats = lines[:-1], lines[-1]
    types = [f["type"] for f in frames]
    assert types[0] == "HELLO" and frames[0]["streams"][0]["channels"][0]["name"] == "I"
    assert types.count("SAMPLES") == device.stats.samples_frames - 2
    assert "STATUS" in types
    assert stats["event"] == "stats" and stats["errors"] == 2
    assert stats["frames_ok"] == len(frames) == device.stats.frames - 2
    text = runner.invoke(cli, ["frames", "decode", str(cap)]).output
    assert "SAMPLES" in text and "first=" in text and "2 rejected" in text


def test_serial_list_prints_json():
    out = CliRunner().invoke(cli, ["serial", "list", "--json"])
    assert out.exit_code == 0 and isinstance(json.loads(out.output), list)


def test_serial_monitor_shows_frames_rates_and_errors(tmp_path):
    import threading

    trace = write_trace(tmp_path / "t.vetrace", seconds=30)
    device = VirtualSerialDevice(trace, speed=10, link=tmp_path / "dev", corrupt_frames={2})
    thread = threading.Thread(target=lambda: asyncio.run(device.run()), daemon=True)
    thread.start()
    import time

    while device.path is None:
        time.sleep(0.01)
    out = CliRunner().invoke(cli, ["serial", "monitor", str(tmp_path / "dev"), "--json",
                                   "--seconds", "1.5", "--every", "0.5"],
                             catch_exceptions=False)
    # stdout is JSON lines; the CRC warning is a log line (stderr, mixed in by CliRunner)
    events = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    kinds = {e["event"] for e in events}
    assert {"frame", "stats"} <= kinds
    assert any(e["event"] == "frame" and e["type"] == "HELLO" for e in events)
    last = [e for e in events if e["event"] == "stats"][-1]
    assert last["decoder"]["crc_errors"] + last["decoder"]["cobs_errors"] == 1
    assert max(e["rates_hz"].get("ecg", 0) for e in events if e["event"] == "stats") >= 1500
    gaps = [e for e in events if e["event"] == "gap"]
    assert gaps and gaps[0]["reason"] == "corrupt"
