"""The ``edge`` command: thin Click commands over the library."""

from __future__ import annotations

import logging

import click

from edge import __version__
from edge.cli.bench import bench
from edge.cli.config import config
from edge.cli.demo import demo
from edge.cli.evaluate import evaluate
from edge.cli.events import events
from edge.cli.record import record
from edge.cli.replay import replay
from edge.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vitals-edge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """vitals-edge: an edge gateway for wearables (BLE, serial) with on-device detection."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for command in (run, demo, replay, record, events, evaluate, bench, config):
    cli.add_command(command)
