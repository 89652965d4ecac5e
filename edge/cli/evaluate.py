"""``edge evaluate``: detection quality on annotated recordings."""

from __future__ import annotations

from typing import Any

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json

TASKS = ["qrs", "af", "pvc"]


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True, help="What to evaluate.")
@click.argument("records", nargs=-1, required=True)
@click.option("--annotator", default="atr", show_default=True,
              help="Reference annotation file extension (qrs).")
@click.option("--channel", default=None, help="Channel name or index (default: first ECG lead).")
@click.option("--tolerance", type=float, default=0.150, show_default=True,
              help="Beat match window in seconds (qrs, pvc).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def evaluate(task: str, records: tuple[str, ...], annotator: str, channel: str | None,
             tolerance: float, as_json: bool, config_path: str | None) -> None:
    """Replay RECORDS (WFDB paths without extension) through the pipeline and score it.

    \b
    qrs  beat detection: TP/FP/FN, sensitivity, positive predictivity (EC57 style)
    af   AF episodes against (AFIB rhythm labels: episode and duration Se/+P
    pvc  ventricular beats (V, E) against the reference labels: beat-level Se/+P
    """
    cfg = get_config(config_path)
    result: dict[str, Any]
    if task == "qrs":
        from edge.evaluate.qrs import evaluate_qrs

        result = evaluate_qrs(list(records), cfg, annotator, channel, tolerance)
    elif task == "af":
        from edge.evaluate.af import evaluate_af

        result = evaluate_af(list(records), cfg, channel)
    else:
        from edge.evaluate.pvc import evaluate_pvc

        result = evaluate_pvc(list(records), cfg, channel, tolerance)
    result.setdefault("task", task)
    if as_json:
        print_json(result)
        return
    _table(result)


def _table(result: dict[str, Any]) -> None:
    rows = [*result["records"], result["total"]]
    extra = [k for k in ("duration_se", "duration_ppv") if k in result["total"]]
    counts = [k for k in ("tp", "fp", "fn") if k in result["total"]]
    head = f"{'record':12} " + " ".join(f"{k.upper():>6}" for k in counts)
    head += f" {'Se %':>8} {'+P %':>8}" + "".join(f" {k:>13}" for k in extra)
    click.echo(head)
    for row in rows:
        line = f"{row['record']:12} " + " ".join(f"{int(row[k]):6d}" for k in counts)
        line += f" {100 * row['se']:8.2f} {100 * row['ppv']:8.2f}"
        line += "".join(f" {100 * row[k]:12.2f}%" for k in extra)
        click.echo(line)
