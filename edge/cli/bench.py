"""``edge bench``: how fast the full pipeline runs on a 30-minute record, and what the
daemon costs in memory and CPU for 1 and 8 patients."""

from __future__ import annotations

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json
from edge.cli.progress import progress, wanted


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise click.BadParameter("a comma-separated list of patient counts, e.g. 1,8")
    return counts


@click.command()
@click.option("--record", type=click.Path(), default=None,
              help="WFDB record or trace (default: $EDGE_DATA_DIR/mitdb/100, 30 min at "
                   "360 Hz). A damaged trace is named in one warning line.")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--patients", default="1,8", show_default=True,
              help="Daemon memory: run `edge run` with each number of patients (ECG + PPG).")
@click.option("--memory-seconds", type=float, default=60.0, show_default=True,
              help="Wall seconds each daemon run streams (0: skip the daemon runs).")
@click.option("--memory-speed", type=float, default=20.0, show_default=True,
              help="Replay speed of the daemon runs (x real time).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def bench(record: str | None, repeats: int, patients: str, memory_seconds: float,
          memory_speed: float, as_json: bool, config_path: str | None) -> None:
    """Replay a record through the full pipeline and report speed, latency and memory.

    Then run the real daemon (`edge run`, a child process) on 1 and 8 replayed
    patients and report its peak RSS (ru_maxrss), RSS after warm-up and at the
    end, and the CPU one patient costs at real time.
    """
    from edge.bench import run_bench

    counts = _counts(patients)
    show = wanted(as_json)
    with progress(repeats, "pipeline", show) as advance:
        result = run_bench(record, repeats, get_config(config_path),
                           on_repeat=lambda _i: advance(1))
    if memory_seconds > 0:
        from edge.bench_memory import bench_daemon_memory

        steps = int(memory_seconds) * len(counts)
        with progress(steps, "daemon", show) as advance:
            result["daemon"] = bench_daemon_memory(
                counts, seconds=memory_seconds, speed=memory_speed,
                progress=(lambda _msg: advance(1)) if show else None)
    if as_json:
        print_json(result)
        return
    click.echo(f"record {result['record']}: {result['signal_seconds']} s at {result['fs']} Hz, "
               f"{result['beats']} beats")
    click.echo(f"real-time factor   {result['real_time_factor']}x (signal s per wall s)")
    click.echo(f"overhead ratio     {result['overhead_ratio']} (pipeline / bare detector)")
    lat = result["latency_ms"]
    click.echo(f"block latency      p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    click.echo(f"peak RSS           {result['peak_rss_mb']} MB (this process, record in memory)")
    for d in result.get("daemon", []):
        click.echo(f"daemon, {d['patients']} patient(s): peak RSS {d['peak_rss_mb']} MB, "
                   f"after warm-up {d['rss_after_warmup_mb']} MB, end {d['rss_end_mb']} MB, "
                   f"CPU {d['cpu_percent_per_patient_at_1x']} % of a core per patient at 1x")
