"""``edge replay``: feed a recording through the live pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from edge.cli.common import config_option, get_config, print_json, run_async
from edge.cli.progress import progress, wanted

if TYPE_CHECKING:
    from edge.types import Block


@click.command()
@click.argument("path", type=click.Path(exists=False))
@click.option("--format", "fmt", type=click.Choice(["auto", "trace", "wfdb", "csv"]),
              default="auto", show_default=True, help="Input format.")
@click.option("--fs", type=float, default=None, help="Sample rate (Hz) of a CSV file.")
@click.option("--channel", default=None, help="Channel name or index (default: first ECG lead).")
@click.option("--speed", type=float, default=None,
              help="Pace at SPEED x real time (default: as fast as possible).")
@click.option("--outbox", type=click.Path(dir_okay=False), default=None,
              help="Store detected episodes in this outbox.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_option
def replay(path: str, fmt: str, fs: float | None, channel: str | None, speed: float | None,
           outbox: str | None, as_json: bool, config_path: str | None) -> None:
    """Replay PATH (a trace, a WFDB record without extension, or a CSV file).

    Results depend only on the data, not on --speed: time is virtual.
    """
    from edge.app import run_pipeline
    from edge.sources.open import open_replay
    from edge.store.outbox import Outbox

    cfg = get_config(config_path)

    async def go() -> None:
        src = open_replay(path, fmt=fmt, fs=fs, channel=channel, speed=speed,
                          block_s=cfg.pipeline.replay_block_s)
        store = Outbox(outbox) if outbox else None
        recording = getattr(src, "recording", None)  # WFDB and CSV: the length is known
        total = int(recording.duration_s) if recording is not None else 0
        done = [0]

        try:
            with progress(total, "replay (signal s)", wanted(as_json)) as advance:

                def on_block(block: Block) -> None:
                    t = int(block.end_index / block.fs)
                    if t > done[0]:
                        advance(t - done[0])
                        done[0] = t

                stats, summary = await run_pipeline(src, cfg, outbox=store, keep_beats=False,
                                                    on_block=on_block)
        finally:
            if store is not None:
                store.close()
        out = summary.to_dict()
        out["samples"] = stats.samples
        out["processor_errors"] = stats.processor_errors
        if as_json:
            print_json(out)
            return
        click.echo(f"{stats.samples} samples, {summary.beats} beats, {summary.gaps} gaps")
        for kind, n in sorted(summary.episodes_by_kind().items()):
            click.echo(f"  {kind}: {n}")

    run_async(go())
