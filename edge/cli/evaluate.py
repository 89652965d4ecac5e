"""``edge evaluate``: detection quality on real recordings, through the live pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json
from edge.cli.progress import progress, wanted

if TYPE_CHECKING:
    from edge.config import EdgeConfig

TASKS = ["qrs", "af", "pvc", "beats", "ppg-hr", "false-alarms"]


@click.command()
@click.option("--task", type=click.Choice(TASKS), required=True, help="What to evaluate.")
@click.argument("records", nargs=-1, required=True)
@click.option("--annotator", default="atr", show_default=True,
              help="Reference annotation file extension (qrs).")
@click.option("--channel", default=None, help="Channel name or index (default: first ECG lead).")
@click.option("--tolerance", type=float, default=0.150, show_default=True,
              help="Beat match window in seconds (qrs, pvc, beats).")
@click.option("--reference", type=click.Path(dir_okay=False), default=None,
              help="ppg-hr: the reference BPM file (default: found next to the recording).")
@click.option("--fs", type=float, default=None, help="false-alarms: sample rate of CSV files.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), default=None,
              help="Write one PNG per record: signal with detected vs reference events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def evaluate(task: str, records: tuple[str, ...], annotator: str, channel: str | None,
             tolerance: float, reference: str | None, fs: float | None, plot_dir: str | None,
             as_json: bool, config_path: str | None) -> None:
    """Replay RECORDS through the pipeline and score what it detects.

    \b
    qrs           beats vs WFDB reference beats: TP/FP/FN, Se, +P (EC57 style, 150 ms)
    af            AF episodes vs (AFIB rhythm labels: episode and duration Se/+P
    pvc           ventricular beats (V, E) vs reference labels: beat-level Se/+P
    beats         EC57 report per record and gross: QRS and classes N, S (SVEB), V (VEB),
                  F, with the confusion matrix (--plot: its PNG)
    ppg-hr        PPG heart rate vs reference BPM (IEEE SPC 2015 .mat): MAE in bpm
    false-alarms  urgent and warning alarms per hour (use alarm-free recordings)
    """
    cfg = get_config(config_path)
    paths = list(records)
    if plot_dir is not None:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
    with progress(len(paths), f"evaluate {task}", wanted(as_json)) as advance:
        result = _run(task, paths, cfg, annotator, channel, tolerance, reference, fs, plot_dir,
                      lambda _record: advance(1))
    result.setdefault("task", task)
    if as_json:
        print_json(result)
        return
    if task == "beats":
        _beats_table(result)
    else:
        _table(result)
    if plot_dir is not None:
        click.echo(f"plots in {plot_dir}/")


def _run(task: str, paths: list[str], cfg: EdgeConfig, annotator: str, channel: str | None,
         tolerance: float, reference: str | None, fs: float | None, plot_dir: str | None,
         on_record: Callable[[str], None]) -> dict[str, Any]:
    result: dict[str, Any]
    if task == "qrs":
        from edge.evaluate.qrs import evaluate_qrs

        result = evaluate_qrs(paths, cfg, annotator, channel, tolerance, plot_dir, on_record)
    elif task == "af":
        from edge.evaluate.af import evaluate_af

        result = evaluate_af(paths, cfg, channel, plot_dir=plot_dir, on_record=on_record)
    elif task == "pvc":
        from edge.evaluate.pvc import evaluate_pvc

        result = evaluate_pvc(paths, cfg, channel, tolerance, plot_dir=plot_dir,
                              on_record=on_record)
    elif task == "beats":
        from edge.evaluate.beat_classes import evaluate_beat_classes

        result = evaluate_beat_classes(paths, cfg, channel, tolerance, plot_dir=plot_dir)
        for path in paths:  # the progress bar moves once the records are scored
            on_record(path)
    elif task == "ppg-hr":
        from edge.evaluate.ppg import evaluate_ppg_hr

        if reference is not None and len(paths) != 1:
            raise click.UsageError("--reference goes with exactly one recording")
        result = evaluate_ppg_hr(paths, reference, cfg.ppg, on_record=on_record)
    else:
        from edge.evaluate.alarms import false_alarms

        result = false_alarms(paths, cfg, csv_fs=fs, plot_dir=plot_dir, on_record=on_record)
    return result


def _width(key: str) -> int:
    return max(15, len(key) + 4)


def _kw(key: str) -> int:
    return max(9, len(key) + 2)


def _table(result: dict[str, Any]) -> None:
    total = result["total"]
    keys = [k for k in ("tp", "fp", "fn", "alarms", "hours", "ref_episodes", "det_episodes",
                        "det_true", "bursts") if k in total]
    ratios = [k for k in ("se", "ppv", "duration_se", "duration_ppv", "se_min_duration")
              if k in total]
    values = [k for k in ("mae_bpm", "alarms_per_hour") if k in total]
    click.echo(f"{'record':14}" + "".join(f"{k:>{_kw(k)}}" for k in keys)
               + "".join(f"{k + ' %':>{_width(k)}}" for k in ratios)
               + "".join(f"{k:>16}" for k in values))
    for row in [*result["records"], {"record": "total", **total}]:
        line = f"{str(row.get('record', '?')):14}"
        line += "".join(f"{row[k]:{_kw(k)}.3g}" if isinstance(row.get(k), float)
                        else f"{row.get(k, ''):>{_kw(k)}}" for k in keys)
        line += "".join(f"{100 * row[k]:{_width(k)}.2f}" if row.get(k) is not None
                        else f"{'-':>{_width(k)}}" for k in ratios)
        line += "".join(f"{row[k]:16.2f}" if row.get(k) is not None else f"{'-':>16}"
                        for k in values)
        if row.get("no_reference_af"):
            line += "  (no AF in the reference)"
        click.echo(line)


def _beats_table(result: dict[str, Any]) -> None:
    """EC57-style table: one line per record, Se / +P for QRS and each class."""
    keys = ["qrs", "N", "S", "V", "F"]
    click.echo(f"{'record':10}" + "".join(f"{k + ' Se':>9}{k + ' +P':>9}" for k in keys))

    def pct(m: dict[str, Any], k: str) -> str:
        n = m["tp"] + (m["fn"] if k == "se" else m["fp"])
        return f"{100 * m[k]:9.2f}" if n else f"{'-':>9}"

    for row in [*result["records"], {"record": "gross", **result["gross"]}]:
        click.echo(f"{str(row['record']):10}"
                   + "".join(pct(row[k], "se") + pct(row[k], "ppv") for k in keys))
    conf = result["confusion"]
    labels = conf["columns_detected"]
    click.echo("\nconfusion (rows reference, columns detected; '-' = none):")
    click.echo(f"{'':6}" + "".join(f"{c:>8}" for c in labels))
    for name, row in zip(conf["rows_reference"], conf["counts"], strict=True):
        click.echo(f"{name:6}" + "".join(f"{v:8d}" for v in row))
