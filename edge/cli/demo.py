"""``edge demo``: a virtual wearable streams a real recording through the live pipeline."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from edge.cli.common import config_option, get_config, print_json, run_async

if TYPE_CHECKING:
    from edge.config import EdgeConfig

DEMO_TRACE = "mitdb208-5min.vetrace"


def demo_trace_path() -> Path:
    return Path(str(resources.files("edge") / "demo_data" / DEMO_TRACE))


@click.command()
@click.option("--speed", type=float, default=30.0, show_default=True,
              help="Stream at SPEED x real time.")
@click.option("--fast", is_flag=True,
              help="As fast as the serial link takes it (ignores --speed; same results).")
@click.option("--workdir", type=click.Path(file_okay=False), default="edge-demo",
              show_default=True, help="Where the demo keeps its outbox (emptied first).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@config_option
def demo(speed: float, fast: bool, workdir: str, as_json: bool, config_path: str | None) -> None:
    """Run the whole gateway on a virtual wearable, no hardware needed.

    The wearable is a virtual serial device on a pseudo-terminal: it streams
    5 minutes of MIT-BIH record 208 (lead MLII, PhysioNet, ODC-BY 1.0) in 0.25 s
    SAMPLES frames of the firmware_bridge protocol, and the gateway reads it
    through the serial source, as it would a wearable on USB. The pipeline
    detects beats, heart rate and episodes and stores them in an outbox.
    """
    import numpy as np

    from edge.app import run_pipeline
    from edge.clock import VirtualClock
    from edge.evaluate.beats import match_beats, reference_beats
    from edge.sim.serial_device import VirtualSerialDevice
    from edge.sources.serial import SerialSource
    from edge.store.outbox import Outbox
    from edge.trace.format import Annotation, read_trace

    cfg = get_config(config_path)
    work = Path(workdir)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    outbox_path = work / "outbox.sqlite3"

    async def go() -> dict[str, Any]:
        # Arrivals are stamped from the device clock (see SerialSource): the demo runs
        # faster than real time, and episode times must not depend on how much faster.
        clock = VirtualClock(start_wall=time.time())
        device = VirtualSerialDevice(demo_trace_path(), speed=None if fast else speed,
                                     link=work / "wearable.pty")
        device_task = asyncio.create_task(device.run(), name="virtual-wearable")
        await _first(device.ready.wait(), device_task)
        src = SerialSource(device.port(), device="demo-wearable", reconnect=False,
                           clock=clock, device_clock_arrivals=True)
        device.on_finished = src.stop  # the gateway acknowledged the last frame
        total = 300.0
        show = not as_json and sys.stderr.isatty()
        bar = click.progressbar(length=int(total), label="streaming", file=sys.stderr,
                                show_eta=False) if show else None
        done = [0.0]

        def progress(block: Any) -> None:
            t = block.end_index / block.fs
            if bar is not None and int(t) > int(done[0]):
                bar.update(int(t) - int(done[0]))
            done[0] = t

        t0 = time.perf_counter()
        with Outbox(outbox_path) as store:
            if bar is not None:
                bar.__enter__()
            try:
                stats, summary = await run_pipeline(src, cfg, clock=clock, outbox=store,
                                                    on_block=progress)
                await device_task
            finally:
                device_task.cancel()
                if bar is not None:
                    bar.__exit__(None, None, None)
            stored = store.counts()
        wall = time.perf_counter() - t0
        delivery = await _deliver_to_local_backend(work, outbox_path, cfg)
        fs = 360.0
        info, items = read_trace(demo_trace_path())
        annotations = [a for a in items if isinstance(a, Annotation)]
        ref_idx = np.array([a.index for a in annotations])
        ref_sym = [a.symbol for a in annotations]
        ref = reference_beats(SimpleNamespace(sample=ref_idx, symbol=ref_sym))
        match = match_beats(ref, np.asarray(summary.beat_index), fs)
        pvc = sum(1 for s in ref_sym if s in ("V", "E"))
        fusion = sum(1 for s in ref_sym if s == "F")
        out = {
            "recording": info.metadata.get("title"),
            "licence": info.metadata.get("licence"),
            "transport": "serial-pty",
            "signal_seconds": round(stats.samples / fs, 1),
            "wall_seconds": round(wall, 2),
            **summary.to_dict(),
            "reference": {"beats": int(ref.size), "pvc_beats": pvc, "fusion_beats": fusion,
                          "qrs_tp": match.tp, "qrs_fp": match.fp, "qrs_fn": match.fn,
                          "qrs_se": round(match.se, 4), "qrs_ppv": round(match.ppv, 4)},
            "pipeline": {"blocks": stats.blocks, "gaps": stats.gaps,
                         "latency_ms": stats.latency_ms(),
                         "processor_errors": stats.processor_errors},
            "outbox": {"path": str(outbox_path), **stored},
            "sync": delivery,
            "link": {"frames": src.link.frames_in, "bytes": src.link.bytes_in,
                     "decode_errors": src.decoder.stats.errors,
                     "seq_lost": src.link.seq_lost, "gaps": src.stats.gaps,
                     "reconnects": src.stats.reconnects,
                     "acknowledged": device.finished_ok},
        }
        return out

    out = run_async(go())
    if as_json:
        print_json(out)
        return
    _print_summary(out)


async def _deliver_to_local_backend(work: Path, outbox_path: Path,
                                    cfg: EdgeConfig) -> dict[str, Any]:
    """Start the local FHIR test backend (a real HTTP server process) and deliver the outbox.

    The backend is the repository's reference receiver (edge/sync/testserver.py):
    it validates each transaction Bundle with fhir.resources, requires a bearer
    token and stores what it accepts. A production gateway points [sync] url
    at the hospital's FHIR server instead.
    """
    from edge.sync.deliver import deliver_all
    from edge.sync.testserver import start_test_backend

    token = work / "backend-token"
    fd = os.open(token, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.write(fd, secrets.token_urlsafe(24).encode())
    os.close(fd)
    cfg = replace(cfg, auth=replace(cfg.auth, mode="bearer", token_file=str(token)))
    with start_test_backend(work / "backend.sqlite3", auth="bearer",
                            bearer_token_file=str(token)) as backend:
        report = await deliver_all(outbox_path, backend.url, cfg)
        return {"backend": backend.url, "backend_kind": "local FHIR test backend",
                **report.to_dict()}


async def _first(wait: Any, task: asyncio.Task[Any]) -> None:
    """Await ``wait``, unless ``task`` fails first (then raise its error)."""
    waiter = asyncio.ensure_future(wait)
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        task.result()


def _print_summary(out: dict[str, Any]) -> None:
    ref = out["reference"]
    hr = out["heart_rate_bpm"] or {}
    click.echo(f"\n{out['recording']} ({out['licence']})")
    link = out["link"]
    click.echo(f"streamed {out['signal_seconds']} s of ECG in {out['wall_seconds']} s over a "
               f"serial pty ({link['frames']} frames, {link['decode_errors']} decode errors, "
               f"{link['gaps']} gaps)")
    click.echo(f"beats detected: {out['beats']}  (reference {ref['beats']}, of which "
               f"{ref['pvc_beats']} PVCs; QRS sensitivity {ref['qrs_se']:.2%}, "
               f"positive predictivity {ref['qrs_ppv']:.2%})")
    classes = out.get("beats_by_class") or {}
    if classes:
        click.echo("beat classes (beat_nsv model): " + ", ".join(
            f"{k} {v}" for k, v in classes.items())
            + f"  (reference: {ref['pvc_beats']} PVCs (V) and {ref['fusion_beats']} fusion "
            "beats (F))")
    if hr:
        click.echo(f"heart rate: mean {hr['mean']} bpm, range {hr['min']}-{hr['max']} bpm")
    click.echo(f"episodes: {len(out['episodes'])}")
    for ep in out["episodes"]:
        click.echo(f"  {ep['kind']:12} {ep['priority']:8} {ep['duration_s']:6.1f} s "
                   f"(by {ep['detector']} {ep['detector_version']})")
    ob = out["outbox"]
    click.echo(f"stored in {ob['path']}: {ob['total']} episode(s)")
    sy = out["sync"]
    click.echo(f"synced: {sy['delivered']} episode(s) delivered to the {sy['backend_kind']} at "
               f"{sy['backend']} as FHIR R4 transaction bundles ({sy['bundles']} bundle(s), "
               f"{sy['duplicates']} duplicates, {sy['missing']} missing, "
               f"{sy['pending']} still pending)")
    click.echo(f"list them: edge events --outbox {ob['path']}")
