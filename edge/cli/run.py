"""``edge run``: the gateway daemon."""

from __future__ import annotations

import click

from edge.cli.common import get_config, run_async


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True,
              help="TOML configuration file (see `edge config example`).")
def run(config_path: str) -> None:
    """Run the gateway: read the configured sources, detect, store (SIGTERM stops cleanly)."""
    from edge.daemon import Daemon

    async def go() -> None:
        result = await Daemon(get_config(config_path), config_path=config_path).run()
        click.echo(f"stopped after {result.stats.blocks} blocks; "
                   f"{result.episodes_stored} episode(s) stored")

    run_async(go())
