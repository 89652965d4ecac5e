"""``edge sync``: check a FHIR backend with a synthetic test bundle (thin commands)."""

from __future__ import annotations

import dataclasses
import sys

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json, run_async


@click.group("sync")
def sync_group() -> None:
    """Clinical sync to a FHIR R4 backend."""


@sync_group.command("check")
@click.argument("url", required=False)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def check(url: str | None, config_path: str | None, as_json: bool) -> None:
    """Send a synthetic test bundle to URL (default: [sync] url) and say what the server did.

    No patient data: a Patient with a random test identifier only, test Devices and one
    Observation per coded episode kind, deleted again where the server allows it. Exit
    code 1 when the bundle is refused, conditional create fails, the patient link does
    not resolve, or the configured patient link will not work on this server.
    """
    from edge.sync.check import report_lines, sync_check

    cfg = get_config(config_path)
    url = url or cfg.sync.url
    if not url:
        raise click.ClickException("no backend: give URL or set [sync] url in the config")
    rep = run_async(sync_check(url, cfg))
    if as_json:
        print_json({**dataclasses.asdict(rep), "ok": rep.ok})
    else:
        for line in report_lines(rep):
            click.echo(line)
    if not rep.ok:
        sys.exit(1)
