"""Progress bars for long commands (click's progressbar, on stderr).

Shown only when a person watches: stdout and stderr are terminals and the
command was not asked for ``--json``. Otherwise nothing extra is written, so
pipes, files and JSON consumers see exactly the command's output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click


def wanted(as_json: bool) -> bool:
    """True when a progress bar would reach a person (terminal, not --json)."""
    return not as_json and sys.stdout.isatty() and sys.stderr.isatty()


def _nothing(n: int = 1) -> None:
    """``advance`` when no bar is shown."""


@contextmanager
def progress(length: int, label: str, show: bool) -> Iterator[Callable[[int], None]]:
    """A bar of ``length`` steps; yields ``advance(n)``. A no-op when ``show`` is false."""
    if not show or length <= 0:
        yield _nothing
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True,
                           show_pos=True) as bar:
        yield bar.update
