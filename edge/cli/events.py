"""``edge events``: list the episodes stored in an outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from edge.cli.common import edge_errors, print_json


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.option("--outbox", type=click.Path(dir_okay=False), default="edge-outbox.sqlite3",
              show_default=True, help="Outbox database.")
@click.option("--kind", default=None, help="Only episodes of this kind.")
@click.option("--limit", type=int, default=None, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def events(outbox: str, kind: str | None, limit: int | None, as_json: bool) -> None:
    """List stored episodes (oldest first)."""
    from edge.store.outbox import Outbox

    if not Path(outbox).exists():
        raise click.ClickException(f"{outbox}: no outbox here (use --outbox PATH)")
    with Outbox(outbox) as store:
        rows = store.events(limit=limit, kind=kind)
    if as_json:
        print_json([{**r.episode.to_dict(), "revision": r.revision,
                     "synced": not r.pending} for r in rows])
        return
    if not rows:
        click.echo("no episodes")
        return
    click.echo(f"{'onset (UTC)':19}  {'kind':12} {'priority':8} {'dur s':>7}  "
               f"{'vital min/mean/max':22} {'status':7} synced")
    for r in rows:
        ep = r.episode
        vit = ""
        if ep.summary is not None:
            s = ep.summary
            vit = f"{s.minimum:g}/{s.mean:g}/{s.maximum:g} {s.unit}"
        click.echo(f"{_iso(ep.onset):19}  {ep.kind:12} {ep.priority.value:8} "
                   f"{ep.duration:7.1f}  {vit:22} {ep.status:7} {'yes' if not r.pending else 'no'}")
