"""``edge evaluate``: detection quality on annotated recordings."""

from __future__ import annotations

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json


@click.command()
@click.option("--task", type=click.Choice(["qrs"]), required=True, help="What to evaluate.")
@click.argument("records", nargs=-1, required=True)
@click.option("--annotator", default="atr", show_default=True,
              help="Reference annotation file extension.")
@click.option("--channel", default=None, help="Channel name or index (default: first ECG lead).")
@click.option("--tolerance", type=float, default=0.150, show_default=True,
              help="Match window in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def evaluate(task: str, records: tuple[str, ...], annotator: str, channel: str | None,
             tolerance: float, as_json: bool, config_path: str | None) -> None:
    """Replay RECORDS (WFDB paths without extension) and score the detections."""
    from edge.evaluate.qrs import evaluate_qrs

    cfg = get_config(config_path)
    result = evaluate_qrs(list(records), cfg, annotator, channel, tolerance)
    if as_json:
        print_json(result)
        return
    click.echo(f"{'record':12} {'TP':>7} {'FP':>6} {'FN':>6} {'Se %':>8} {'+P %':>8}")
    for row in [*result["records"], result["total"]]:
        click.echo(f"{row['record']:12} {row['tp']:7d} {row['fp']:6d} {row['fn']:6d} "
                   f"{100 * row['se']:8.2f} {100 * row['ppv']:8.2f}")
