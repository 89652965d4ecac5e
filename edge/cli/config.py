"""``edge config``: print an example configuration, check a file."""

from __future__ import annotations

import click

from edge.cli.common import edge_errors
from edge.config import config_warnings, example_toml, load_config


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
    """Check PATH: every key known, every value of the right type, the web token rule;
    warn about placeholders."""
    cfg = load_config(path)
    if cfg.web.listen and cfg.web.token_file:
        from edge.web.auth import read_token

        read_token(cfg.web.token_file)  # mode 0600, long enough
    warnings = config_warnings(cfg)
    for w in warnings:
        click.echo(f"{path}: warning: {w}", err=True)
    click.echo(f"{path}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))
