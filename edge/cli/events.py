"""``edge events``: list the episodes stored in an outbox; ``edge events show ID``: one in full."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json, run_async

if TYPE_CHECKING:
    from edge.store.outbox import StoredEvent


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _need(outbox: str) -> None:
    if not Path(outbox).exists():
        raise click.ClickException(f"{outbox}: no outbox here (use --outbox PATH)")


_OUTBOX = click.option("--outbox", type=click.Path(dir_okay=False),
                       default="edge-outbox.sqlite3", show_default=True,
                       help="Outbox database.")


@click.group(invoke_without_command=True)
@_OUTBOX
@click.option("--kind", default=None, help="Only episodes of this kind.")
@click.option("--limit", type=int, default=None, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@edge_errors
def events(ctx: click.Context, outbox: str, kind: str | None, limit: int | None,
           as_json: bool) -> None:
    """List stored episodes (oldest first); `edge events show ID` prints one in full."""
    if ctx.invoked_subcommand is not None:
        return
    from edge.store.outbox import Outbox

    _need(outbox)
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


def _stored(row: StoredEvent) -> dict[str, object]:
    return {**row.episode.to_dict(), "revision": row.revision, "synced": not row.pending,
            "synced_revision": row.synced_revision, "stored": row.created,
            "updated": row.updated, "refused_by_backend": row.failed,
            "last_error": row.last_error}


@events.command("show")
@click.argument("event_id", metavar="ID")
@_OUTBOX
@click.option("--png", "png", type=click.Path(dir_okay=False), default=None,
              help="Write the evidence strip (ECG with beat labels, RR intervals, quality) "
                   "to this PNG (needs matplotlib: the 'plot' extra).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def show(event_id: str, outbox: str, png: str | None, as_json: bool,
         config_path: str | None) -> None:
    """Print one stored episode in full (every field, details, sync state, evidence)."""
    from edge.store.outbox import Outbox

    _need(outbox)
    with Outbox(outbox) as store:
        row = store.get(event_id)
        if row is None:
            matches = [r for r in store.events() if r.episode.id.startswith(event_id)]
            if len(matches) == 1 and len(event_id) >= 4:
                row = matches[0]
        if row is None:
            raise click.ClickException(f"{outbox}: no episode with id {event_id!r} "
                                       "(`edge events` lists them)")
        evidence = store.evidence(row.episode.id)
    data = _stored(row)
    data["evidence"] = None if evidence is None else {
        "fs": evidence.fs, "unit": evidence.unit, "samples": int(evidence.samples.size),
        "seconds": round(evidence.samples.size / evidence.fs, 2)}
    if png is not None:
        if evidence is None:
            raise click.ClickException(f"episode {row.episode.id} has no evidence snippet "
                                       "stored (pruned, or evidence off); no image written")
        try:
            import matplotlib  # noqa: F401
        except ImportError as exc:
            raise click.ClickException("--png needs matplotlib: pip install "
                                       "'vitals-edge[plot]'") from exc
        from edge.app import load_models
        from edge.web.evidence import annotate, render_png

        config = get_config(config_path)
        view = run_async(annotate(row.episode, evidence, config, load_models(config)))
        render_png(view, png)
        data["png"] = png
        data["evidence"]["beats"] = len(view.beats)  # type: ignore[index]
        by_class: dict[str, int] = {}
        for _, label in view.beats:
            by_class[label] = by_class.get(label, 0) + 1
        data["evidence"]["beats_by_class"] = dict(sorted(by_class.items()))  # type: ignore[index]
    if as_json:
        print_json(data)
        return
    ep = row.episode
    click.echo(f"episode {ep.id}")
    lines = [("kind", ep.kind), ("priority", ep.priority.value), ("status", ep.status),
             ("device / stream", f"{ep.key.device} / {ep.key.stream}"),
             ("onset (UTC)", _iso(ep.onset)), ("offset (UTC)", _iso(ep.offset)),
             ("duration", f"{ep.duration:.1f} s"),
             ("samples", f"{ep.onset_index} - {ep.offset_index}"),
             ("detector", f"{ep.detector} {ep.detector_version}"),
             ("confidence", f"{ep.confidence:g}")]
    if ep.summary is not None:
        s = ep.summary
        lines.append((s.kind.value, f"min {s.minimum:g} / mean {s.mean:g} / max {s.maximum:g} "
                                    f"{s.unit}"))
    lines += [("revision", str(row.revision)),
              ("synced", "yes" if not row.pending else
               ("refused by the backend" if row.failed else "no, waiting")),
              ("stored (UTC)", _iso(row.created)), ("updated (UTC)", _iso(row.updated))]
    if row.last_error:
        lines.append(("last error", row.last_error))
    ev = data["evidence"]
    lines.append(("evidence", "none stored" if ev is None else
                  f"{ev['seconds']} s at {ev['fs']:g} Hz ({ev['unit']})"))  # type: ignore[index]
    for k, v in lines:
        click.echo(f"  {k + ':':18} {v}")
    if ep.details:
        click.echo("  details:")
        for k, v in sorted(ep.details.items()):
            click.echo(f"    {k}: {json.dumps(v, default=str, sort_keys=True)}")
    if png is not None:
        click.echo(f"evidence strip written to {png} ({ev['beats']} beats)")  # type: ignore[index]
