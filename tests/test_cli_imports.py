"""Commands load only what they use; a missing extra is one line; progress only for people.

Each check runs the real ``edge`` command in a fresh interpreter (a subprocess):
what a module imports depends on what was imported before it.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from edge.cli.main import COMMANDS, cli

#: Libraries that cost tens of megabytes or most of a second: never for help text.
HEAVY = ("numpy", "scipy", "onnxruntime", "ai_edge_litert", "fhir", "pydantic", "httpx",
         "pandas", "matplotlib", "wfdb", "bleak", "dbus_fast", "tensorflow", "prometheus_client",
         "cryptography", "jwt")

_LOADED = """
import sys
from edge.cli.main import cli
try:
    cli({args!r}, prog_name="edge")
except SystemExit:
    pass
print("LOADED", sorted({{m.split(".")[0] for m in sys.modules}}), file=sys.stderr)
"""


def _loaded_after(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _LOADED.format(args=list(args))],
                          capture_output=True, text=True, timeout=60)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED "))
    return set(json.loads(line.removeprefix("LOADED ").replace("'", '"')))


def test_edge_help_lists_every_command_and_loads_no_heavy_library():
    out = subprocess.run([sys.executable, "-m", "edge", "--help"], capture_output=True,
                         text=True, timeout=60).stdout
    for name in COMMANDS:
        assert f"  {name} " in out
    assert _loaded_after("--help") & set(HEAVY) == set()


@pytest.mark.parametrize("group", sorted(COMMANDS))
def test_group_help_loads_no_heavy_library(group):
    assert _loaded_after(group, "--help") & set(HEAVY) == set()


def test_every_table_entry_is_a_command_of_that_name():
    ctx = cli.make_context("edge", ["--help"], resilient_parsing=True)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def _demo_config(tmp_path: Path) -> Path:
    trace = resources.files("edge") / "demo_data" / "mitdb208-5min.vetrace"
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "outbox.sqlite3"}"\n[ops]\nmetrics_port = -1\n'
                   f'[[sources]]\ntype = "replay"\npath = "{trace}"\nspeed = 20.0\n')
    return cfg


def test_the_daemon_replaying_a_trace_maps_no_pandas_matplotlib_or_tensorflow(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config",
                             str(_demo_config(tmp_path))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "monitoring" in line:
                break
        time.sleep(2.0)  # every processor has run on the first windows
        assert proc.poll() is None
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "/site-packages/scipy/" in maps  # the check sees native libraries at all
        for package in ("pandas", "matplotlib", "tensorflow", "wfdb"):
            assert f"/site-packages/{package}/" not in maps, package
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


_WITHOUT = """
import sys
for name in {missing!r}:
    sys.modules[name] = None  # as if the extra were not installed
from edge.cli.main import cli
cli({args!r}, prog_name="edge")
"""


def _without(missing: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _WITHOUT.format(missing=missing, args=list(args))],
                          capture_output=True, text=True, timeout=120)


def test_replaying_a_wfdb_record_without_the_tools_extra_says_which_extra_in_one_line(data_dir):
    proc = _without(["wfdb"], "replay", str(data_dir / "mitdb" / "100"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'tools' extra" in lines[0] and "pip install 'vitals-edge[tools]'" in lines[0]


def test_plots_without_matplotlib_say_which_extra_in_one_line(data_dir, tmp_path):
    proc = _without(["matplotlib"], "evaluate", "--task", "qrs", "--plot", str(tmp_path),
                    str(data_dir / "cpsc2021" / "data_21_7"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'tools' extra" in lines[0], proc.stderr


def test_the_demo_trace_replays_without_the_tools_extra():
    trace = resources.files("edge") / "demo_data" / "mitdb208-5min.vetrace"
    proc = _without(["wfdb", "pandas", "matplotlib"], "replay", "--json", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["beats"] > 400


def _on_a_terminal(*args: str) -> str:
    """Run ``edge ARGS`` with stdout and stderr on a pseudo-terminal; everything it wrote."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "edge", *args], stdin=subprocess.DEVNULL,
                            stdout=sub, stderr=sub, close_fds=True)
    os.close(sub)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode(errors="replace")


def test_evaluate_shows_records_done_on_a_terminal(data_dir):
    out = _on_a_terminal("evaluate", "--task", "qrs", str(data_dir / "cpsc2021" / "data_21_7"),
                         str(data_dir / "cpsc2021" / "data_84_1"))
    assert "evaluate qrs" in out and "2/2" in out
    assert "total" in out


def test_evaluate_writes_nothing_extra_with_json_or_off_a_terminal(data_dir):
    rec = str(data_dir / "cpsc2021" / "data_21_7")
    on_tty_json = _on_a_terminal("evaluate", "--task", "qrs", "--json", rec)
    assert json.loads(on_tty_json)["total"]["tp"] > 0  # the whole output is the JSON
    piped = subprocess.run([sys.executable, "-m", "edge", "evaluate", "--task", "qrs", rec],
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0
    assert piped.stderr == ""
    assert piped.stdout.splitlines()[0].startswith("record")
    assert "evaluate qrs" not in piped.stdout
