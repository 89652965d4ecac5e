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
@click.option("--beats", "beats_csv", type=click.Path(dir_okay=False), default=None,
              help="Write every detected beat (sample index, label) to this CSV file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_option
def replay(path: str, fmt: str, fs: float | None, channel: str | None, speed: float | None,
           outbox: str | None, beats_csv: str | None, as_json: bool,
           config_path: str | None) -> None:
    """Replay PATH (a trace, a WFDB record without extension, or a CSV file).

    Results depend only on the data, not on --speed: time is virtual. A damaged
    trace is replayed around its damage (gaps where samples were lost) and one
    warning line says what was lost; --json gives the figures under "trace".
    """
    from edge.app import run_pipeline
    from edge.sources.open import open_replay
    from edge.sources.replay import TraceSource
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

                stats, summary = await run_pipeline(src, cfg, outbox=store,
                                                    keep_beats=beats_csv is not None,
                                                    on_block=on_block)
        finally:
            if store is not None:
                store.close()
        if beats_csv is not None:
            with open(beats_csv, "w", encoding="utf-8") as fh:
                fh.write("index,label\n")
                fh.writelines(f"{i},{lab}\n"
                              for i, lab in zip(summary.beat_index, summary.beat_classes,
                                                strict=True))
        out = summary.to_dict()
        out["samples"] = stats.samples
        out["processor_errors"] = stats.processor_errors
        if isinstance(src, TraceSource):  # damage is also named in one warning log line
            out["trace"] = src.info.damage_report()
        if as_json:
            print_json(out)
            return
        click.echo(f"{stats.samples} samples, {summary.beats} beats, {summary.gaps} gaps")
        for kind, n in sorted(summary.episodes_by_kind().items()):
            click.echo(f"  {kind}: {n}")

    run_async(go())
