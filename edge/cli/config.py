"""``edge config``: print an example configuration, check a file."""

from __future__ import annotations

import click

from edge.cli.common import edge_errors
from edge.config import example_toml, load_config


@click.group()
def config() -> None:
    """Configuration files."""


@config.command("example")
def example() -> None:
    """Print a full, commented configuration with every default and its rationale."""
    click.echo(example_toml(), nl=False)


@config.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@edge_errors
def check(path: str) -> None:
    """Check PATH: every key known, every value of the right type, the web token rule."""
    cfg = load_config(path)
    if cfg.web.listen and cfg.web.token_file:
        from edge.web.auth import read_token

        read_token(cfg.web.token_file)  # mode 0600, long enough
    click.echo(f"{path}: ok")
