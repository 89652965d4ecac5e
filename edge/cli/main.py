"""The ``edge`` command: thin Click commands over the library."""

from __future__ import annotations

import logging

import click

from edge import __version__
from edge.cli.bench import bench
from edge.cli.ble import ble_group
from edge.cli.config import config
from edge.cli.demo import demo
from edge.cli.doctor import doctor
from edge.cli.evaluate import evaluate
from edge.cli.events import events
from edge.cli.frames import frames
from edge.cli.model import model
from edge.cli.outbox import outbox
from edge.cli.record import record
from edge.cli.replay import replay
from edge.cli.run import run
from edge.cli.serial import serial_group
from edge.cli.simulate import simulate
from edge.cli.status import status
from edge.cli.sync import sync_group
from edge.ops.logs import setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vitals-edge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-format", type=click.Choice(["text", "json", "journal"]),
              envvar="EDGE_LOG_FORMAT", default="text", show_default=True,
              help="Log lines as text, JSON lines, or journald priority prefixes.")
def cli(verbose: int, log_format: str) -> None:
    """vitals-edge: an edge gateway for wearables (BLE, serial) with on-device detection."""
    setup_logging(logging.WARNING - 10 * min(verbose, 2), log_format)


for command in (run, status, doctor, demo, replay, record, events, outbox, evaluate, bench,
                config, model, simulate, serial_group, frames, ble_group, sync_group):
    cli.add_command(command)
