"""``edge outbox``: status, list, flush and export of the outbox (thin commands)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json, run_async
from edge.config import EdgeConfig

if TYPE_CHECKING:
    from edge.store.outbox import Outbox, StoredEvent


def _iso(t: float | None) -> str:
    return "never" if t is None else datetime.fromtimestamp(t, UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def _open(outbox: str | None, cfg: EdgeConfig) -> Outbox:
    path = outbox or cfg.store.path
    if not Path(path).exists():
        raise click.ClickException(f"{path}: no outbox here (use --outbox PATH)")
    from edge.store.outbox import Outbox

    return Outbox(path)


def _row(r: StoredEvent) -> dict[str, Any]:
    return {"id": r.episode.id, "kind": r.episode.kind, "priority": r.episode.priority.value,
            "status": r.episode.status, "onset": r.episode.onset, "revision": r.revision,
            "synced_revision": r.synced_revision, "state":
            "delivered" if not r.pending else ("failed" if r.failed else "pending"),
            "created": r.created, "last_error": r.last_error}


outbox_option = click.option("--outbox", type=click.Path(dir_okay=False), default=None,
                             help="Outbox database (default: [store] path of the config).")


@click.group()
def outbox() -> None:
    """Inspect and drain the outbox of episodes waiting for the clinical backend."""


@outbox.command()
@outbox_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def status(outbox: str | None, config_path: str | None, as_json: bool) -> None:
    """Queue depth, oldest pending event, last sync and errors."""
    from edge.sync.engine import sync_status

    cfg = get_config(config_path)
    with _open(outbox, cfg) as store:
        st = sync_status(store)
    if as_json:
        print_json(st.to_dict())
        return
    by = ", ".join(f"{k} {v}" for k, v in sorted(st.pending_by_priority.items())) or "none"
    click.echo(f"pending        {st.queue_depth} ({by})")
    click.echo(f"failed         {st.failed} (refused by the backend; `edge outbox flush` "
               "retries them)" if st.failed else "failed         0")
    click.echo(f"oldest pending {_iso(st.oldest_pending)} (lag {st.lag_s:.0f} s)")
    click.echo(f"last sync      {_iso(st.last_success)}")
    click.echo(f"delivered      {st.delivered_total} event revision(s) in all")
    if st.last_error:
        click.echo(f"last error     {_iso(st.last_error.get('time'))}: "
                   f"{st.last_error.get('message')}")
    errs = ", ".join(f"{k} {v}" for k, v in sorted(st.errors.items()) if v) or "none"
    click.echo(f"errors         {errs}")
    click.echo(f"size           {st.outbox_bytes} bytes")


@outbox.command("list")
@outbox_option
@config_option
@click.option("--pending", "which", flag_value="pending", help="Only undelivered events.")
@click.option("--failed", "which", flag_value="failed", help="Only events the backend refused.")
@click.option("--all", "which", flag_value="all", default=True, help="Every event (default).")
@click.option("--limit", type=int, default=None, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def list_(outbox: str | None, config_path: str | None, which: str, limit: int | None,
          as_json: bool) -> None:
    """List events with their delivery state (pending ones in upload order)."""
    cfg = get_config(config_path)
    with _open(outbox, cfg) as store:
        if which == "pending":
            rows = store.pending(limit=limit or 1_000_000)
        elif which == "failed":
            rows = store.failed()
        else:
            rows = store.events(limit=limit)
    rows = rows[:limit] if limit else rows
    if as_json:
        print_json([_row(r) for r in rows])
        return
    if not rows:
        click.echo("no events")
        return
    click.echo(f"{'id':36}  {'kind':12} {'priority':8} {'rev':>3}  {'state':9} onset (UTC)")
    for r in rows:
        d = _row(r)
        click.echo(f"{d['id']:36}  {d['kind']:12} {d['priority']:8} {d['revision']:>3}  "
                   f"{d['state']:9} {_iso(d['onset'])}")


@outbox.command()
@outbox_option
@config_option
@click.option("--url", default=None, help="FHIR base URL (default: [sync] url of the config).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def flush(outbox: str | None, config_path: str | None, url: str | None, as_json: bool) -> None:
    """Deliver every pending event now (refused ones are retried too)."""
    from edge.sync.deliver import deliver_all

    cfg = get_config(config_path)
    url = url or cfg.sync.url
    if not url:
        raise click.ClickException("no backend: give --url or set [sync] url in the config")
    with _open(outbox, cfg) as store:
        requeued = store.retry_failed()
        path = store.path
    report = run_async(deliver_all(path, url, replace(cfg), verify=False))
    if as_json:
        print_json({**report.to_dict(), "requeued": requeued})
        return
    click.echo(f"delivered {report.delivered} event revision(s) in {report.bundles} bundle(s) "
               f"in {report.seconds:.1f} s; {report.pending} pending, {report.failed} refused")


@outbox.command()
@outbox_option
@config_option
@click.option("--format", "fmt", type=click.Choice(["ndjson", "fhir-ndjson"]), default="ndjson",
              show_default=True,
              help="ndjson: one stored event per line; fhir-ndjson: the FHIR resources sent.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              help="Output file (default: stdout).")
@edge_errors
def export(outbox: str | None, config_path: str | None, fmt: str, output: str) -> None:
    """Export every event, one JSON object per line."""
    cfg = get_config(config_path)
    with _open(outbox, cfg) as store:
        rows = store.events()
        lines: list[str] = []
        if fmt == "ndjson":
            lines = [json.dumps({**r.episode.to_dict(), "revision": r.revision,
                                 "synced_revision": r.synced_revision}, sort_keys=True)
                     for r in rows]
        else:
            from edge.sync.fhir import transaction_bundle

            ev = {r.episode.id: e for r in rows
                  if cfg.fhir.send_evidence and (e := store.evidence(r.episode.id)) is not None}
            for r in rows:
                plan = transaction_bundle([(r.episode, r.revision)], cfg.fhir, ev)
                lines += [json.dumps(e["resource"], sort_keys=True)
                          for i, e in enumerate(plan.bundle["entry"])
                          if i in plan.entries_of[r.episode.id]]
    text = "".join(line + "\n" for line in lines)
    if output == "-":
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")
