"""``edge doctor``: one line per check, with the fix."""

from __future__ import annotations

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def doctor(config_path: str | None, as_json: bool) -> None:
    """Check Python, packages, runtimes, Bluetooth, serial, clock, disk and backend."""
    from edge.ops.doctor import run_checks

    results = run_checks(get_config(config_path))
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            line = f"[{_MARK[r.status]}] {r.name:10} {r.detail}"
            click.echo(line + (f"\n           fix: {r.fix}" if r.fix and r.status in
                               ("fail", "warn") else ""))
    if any(r.status == "fail" for r in results):
        raise SystemExit(1)
