"""``edge bench``: how fast the full pipeline runs on a 30-minute record."""

from __future__ import annotations

import click

from edge.cli.common import config_option, edge_errors, get_config, print_json


@click.command()
@click.option("--record", type=click.Path(), default=None,
              help="WFDB record or trace (default: $EDGE_DATA_DIR/mitdb/100, 30 min at "
                   "360 Hz). A damaged trace is named in one warning line.")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
@edge_errors
def bench(record: str | None, repeats: int, as_json: bool, config_path: str | None) -> None:
    """Replay a record through the full pipeline and report speed, latency and memory."""
    from edge.bench import run_bench

    result = run_bench(record, repeats, get_config(config_path))
    if as_json:
        print_json(result)
        return
    click.echo(f"record {result['record']}: {result['signal_seconds']} s at {result['fs']} Hz, "
               f"{result['beats']} beats")
    click.echo(f"real-time factor   {result['real_time_factor']}x (signal s per wall s)")
    click.echo(f"overhead ratio     {result['overhead_ratio']} (pipeline / bare detector)")
    lat = result["latency_ms"]
    click.echo(f"block latency      p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    click.echo(f"peak RSS           {result['peak_rss_mb']} MB")
