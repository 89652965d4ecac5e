"""``edge trace``: check a trace's integrity; repair a damaged one into a clean copy."""

from __future__ import annotations

import click

from edge.cli.common import edge_errors, print_json


@click.group("trace")
def trace_group() -> None:
    """Trace files: integrity report, repair of a damaged trace."""


@trace_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when the trace is damaged.")
@edge_errors
def check(path: str, as_json: bool, strict: bool) -> None:
    """Read all of PATH: records, streams, duration, and any damage (where, what it cost).

    Exit 0 for a readable trace, damaged or not (1 with --strict if damaged); 1 for
    a file with no readable stream.
    """
    from edge.trace.integrity import check_trace

    info, streams = check_trace(path)
    if not any(s.samples or s.vitals for s in streams) and info.damage:
        raise click.ClickException(f"{path}: no readable stream in this trace "
                                   f"({info.bytes_dropped:,} of {info.size:,} bytes damaged)")
    if as_json:
        print_json({"path": path, "bytes": info.size, "records": info.records,
                    "metadata": info.metadata, "streams": [s.to_dict() for s in streams],
                    "damage": info.damage_report()})
    else:
        click.echo(f"{path}: {info.records:,} records, {info.size:,} bytes, "
                   f"{len(streams)} stream{'s' if len(streams) != 1 else ''}")
        for s in streams:
            d = s.to_dict()
            gaps = ", ".join(f"{n} {r}" for r, n in d["gaps"].items()) or "none"
            seconds = f"{d['seconds']:.1f} s" if d["seconds"] is not None else "-"
            click.echo(f"  {d['stream']}: {s.fs:g} Hz, {', '.join(s.channels) or '-'}; "
                       f"{s.samples:,} samples ({seconds}) in {s.blocks:,} blocks; gaps: {gaps}; "
                       f"{s.vitals} vitals, {s.annotations} annotations")
        click.echo(info.damage_line(path))
        for dmg in info.damage:
            where = f"  byte {dmg.offset:,}: {dmg.length:,} bytes"
            if dmg.torn_tail:
                where += ", torn last record"
            if dmg.note:
                where += f", {dmg.note}"
            if dmg.lost:
                where += (f", {dmg.samples_lost:,} samples ({dmg.seconds_lost:.2f} s) lost from "
                          f"stream time {dmg.lost[0][4]:.2f} s")
            click.echo(where)
    if strict and info.damage:
        raise SystemExit(1)


@trace_group.command("repair")
@click.argument("path", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
@edge_errors
def repair(path: str, out: str) -> None:
    """Write a clean copy of PATH to OUT: every readable record, gap records where damage was.

    OUT must not exist. The copy replays with gaps (reason: corrupt) where samples were lost.
    """
    from edge.trace.integrity import repair_trace

    info = repair_trace(path, out)
    click.echo(info.damage_line(path))
    click.echo(f"{out}: clean copy written ({info.records:,} records kept, "
               f"{len(info.damage)} damaged stretch{'es' if len(info.damage) != 1 else ''} "
               f"replaced by {sum(len(d.lost) for d in info.damage)} gap records)")
