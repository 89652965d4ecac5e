"""The ``edge`` command: thin Click commands over the library.

Commands are loaded lazily: to add a command or a group, add one line to
``COMMANDS`` (``name -> "module:attribute"``) and keep the module's heavy
imports inside its functions (``tests/test_cli_imports.py`` checks that
``edge --help`` and ``edge <group> --help`` load no heavy library).
"""

from __future__ import annotations

import logging

import click

from edge import __version__
from edge.cli.lazy import LazyGroup

COMMANDS: dict[str, str] = {
    "bench": "edge.cli.bench:bench",
    "ble": "edge.cli.ble:ble_group",
    "config": "edge.cli.config:config",
    "demo": "edge.cli.demo:demo",
    "doctor": "edge.cli.doctor:doctor",
    "evaluate": "edge.cli.evaluate:evaluate",
    "events": "edge.cli.events:events",
    "frames": "edge.cli.frames:frames",
    "model": "edge.cli.model:model",
    "outbox": "edge.cli.outbox:outbox",
    "record": "edge.cli.record:record",
    "replay": "edge.cli.replay:replay",
    "run": "edge.cli.run:run",
    "serial": "edge.cli.serial:serial_group",
    "simulate": "edge.cli.simulate:simulate",
    "status": "edge.cli.status:status",
    "sync": "edge.cli.sync:sync_group",
    "trace": "edge.cli.trace:trace_group",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vitals-edge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-format", type=click.Choice(["text", "json", "journal"]),
              envvar="EDGE_LOG_FORMAT", default="text", show_default=True,
              help="Log lines as text, JSON lines, or journald priority prefixes.")
def cli(verbose: int, log_format: str) -> None:
    """vitals-edge: an edge gateway for wearables (BLE, serial) with on-device detection."""
    from edge.ops.logs import setup_logging

    setup_logging(logging.WARNING - 10 * min(verbose, 2), log_format)
