"""Helpers shared by the CLI commands: error handling and output."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from edge.config import EdgeConfig, load_config
from edge.errors import EdgeError

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; library errors become one clear line and exit code 1."""
    try:
        return asyncio.run(coro)
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from exc


def edge_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator: turn :class:`EdgeError` into a ClickException (one line, non-zero exit)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except EdgeError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=str))


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        default=None, help="TOML configuration file (defaults otherwise).")(fn)


def get_config(path: str | None) -> EdgeConfig:
    return load_config(path)
