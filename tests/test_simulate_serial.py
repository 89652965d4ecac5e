"""`edge simulate serial` and `edge record --serial`, end to end over real ptys."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

from click.testing import CliRunner

from edge.cli.main import cli
from edge.sim.serial_device import VirtualSerialDevice
from edge.sources.backoff import Backoff
from edge.sources.serial import SerialSource
from edge.types import Block
from tests.serial_helpers import DEMO_TRACE, write_trace


def test_simulate_serial_prints_the_port_and_streams_the_trace(tmp_path):
    trace = write_trace(tmp_path / "t.vetrace", seconds=4)
    link = tmp_path / "dev"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "simulate", "serial", "--trace", str(trace), "--fast",
         "--link", str(link), "--drop", "0.1", "--seed", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port == str(link) and os.path.islink(link)

        async def read():
            src = SerialSource(port, reconnect=False, backoff=Backoff(0.05, 0.2))
            n = 0
            async with src:
                async for item in src:
                    n += item.n_samples if isinstance(item, Block) else 0
            return n, src

        n, src = asyncio.run(asyncio.wait_for(read(), 20))
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    faults = [x for x in lines if x.get("kind") == "drop"]
    done = [x for x in lines if x.get("event") == "done"][0]
    assert done["acknowledged"] and done["faults"] == len(faults) > 0
    assert n + sum(f["end_index"] - f["start_index"] for f in faults) == 1000
    assert src.link.seq_lost == len(faults)


def run_device_in_thread(device):
    """The device on its own event loop (the CLI under test runs asyncio.run itself)."""
    thread = threading.Thread(target=lambda: asyncio.run(device.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while device.path is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread


def test_record_serial_writes_a_trace_that_replays_to_the_same_beats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    device = VirtualSerialDevice(DEMO_TRACE, speed=None, link=tmp_path / "wearable")
    thread = run_device_in_thread(device)
    runner = CliRunner()
    rec = runner.invoke(cli, ["record", "rec.vetrace", "--serial", str(tmp_path / "wearable"),
                              "--device", "demo-wearable", "--stop-on-disconnect"],
                        catch_exceptions=False)
    thread.join(10)
    assert rec.exit_code == 0, rec.output
    assert device.finished_ok
    replayed = json.loads(runner.invoke(cli, ["replay", "rec.vetrace", "--json"]).output)
    direct = json.loads(runner.invoke(cli, ["replay", str(DEMO_TRACE), "--json"]).output)
    assert replayed["samples"] == direct["samples"] == 108000
    assert replayed["beats"] == direct["beats"]
    assert replayed["episodes_by_kind"] == direct["episodes_by_kind"]


def test_record_needs_exactly_one_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    both = runner.invoke(cli, ["record", "x.vetrace", "--from", "a", "--serial", "b"])
    none = runner.invoke(cli, ["record", "x.vetrace"])
    assert both.exit_code != 0 and none.exit_code != 0
    assert "exactly one of --from PATH, --serial PORT or --ble ADDRESS" in both.output + none.output


def test_record_from_a_missing_port_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["record", "x.vetrace", "--serial", "usb:1234:abcd"])
    assert out.exit_code != 0 and "no serial port 1234:abcd is connected" in out.output
