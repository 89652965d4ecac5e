"""``edge serial``: find a wearable's port and watch what it sends (for firmware developers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import click
import serial.tools.list_ports

from edge.cli.common import run_async
from edge.types import Block, Gap, VitalSample

if TYPE_CHECKING:
    import firmware_bridge as fb


@click.group("serial")
def serial_group() -> None:
    """Serial ports and firmware_bridge devices on them."""


def list_ports() -> list[dict[str, Any]]:
    rows = []
    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        usb = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else None
        spec = None
        if usb:
            spec = f"usb:{usb}" + (f":{p.serial_number}" if p.serial_number else "")
        rows.append({"device": p.device, "usb": usb, "serial_number": p.serial_number,
                     "description": p.description, "manufacturer": p.manufacturer,
                     "config_port": spec or p.device})
    return rows


@serial_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the ports as JSON.")
def list_cmd(as_json: bool) -> None:
    """Serial ports with their USB VID:PID, serial number and description.

    ``config_port`` is what to put in a [[sources]] table's ``port`` so the
    device is found again after a re-plug.
    """
    rows = list_ports()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no serial ports found")
        return
    for r in rows:
        click.echo(f"{r['device']:<16} {r['usb'] or '-':<10} {r['serial_number'] or '-':<16} "
                   f"{r['description']}   port = \"{r['config_port']}\"")


@serial_group.command("monitor")
@click.argument("port")
@click.option("--baud", type=int, default=921600, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Line-delimited JSON events.")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds.")
@click.option("--every", type=float, default=1.0, show_default=True,
              help="Seconds between statistics lines.")
@click.option("--quiet-samples", is_flag=True, help="Do not print a line per SAMPLES frame.")
def monitor(port: str, baud: int, as_json: bool, seconds: float | None, every: float,
            quiet_samples: bool) -> None:
    """Show the frames a device on PORT sends, per-stream sample rates and error counters.

    PORT is a path or usb:VID:PID[:SERIAL]. The monitor answers HELLO with
    WELCOME like the gateway does, and reconnects if the device goes away
    (reflashing). Stop it with Ctrl-C or --seconds. Device LOG text is shown:
    this is a developer's terminal, not the gateway's log.
    """
    import firmware_bridge as fb
    from edge.cli.frame_text import describe, message_dict
    from edge.sources.serial import SerialSource

    t0 = time.monotonic()

    def emit(event: dict[str, Any], line: str) -> None:
        if as_json:
            click.echo(json.dumps({"t": round(time.monotonic() - t0, 3), **event}, default=str))
        else:
            click.echo(f"{time.monotonic() - t0:9.3f} {line}")

    def on_message(msg: fb.Message) -> None:
        if quiet_samples and isinstance(msg, fb.Samples):
            return
        emit({"event": "frame", **message_dict(msg)}, describe(msg))

    src = SerialSource(port, baud=baud, on_message=on_message)
    counts: dict[str, int] = {}
    rates: dict[str, float] = {}

    def stats_event(window: float) -> None:
        for k in counts:
            rates[k] = round(counts[k] / window, 1) if window > 0 else 0.0
            counts[k] = 0
        link = src.link_stats()
        dec = link["decoder"]
        errs = " ".join(f"{k} {v}" for k, v in dec.items() if k not in ("frames_ok",) and v)
        emit({"event": "stats", "rates_hz": dict(rates), **link},
             f"[stats] rates {' '.join(f'{k} {v:g} Hz' for k, v in rates.items()) or '-'} | "
             f"frames {dec['frames_ok']} | errors {errs or 'none'} | seq lost "
             f"{link['seq_lost']} | reconnects {link['reconnects']}")

    async def consume() -> None:
        async for item in src:
            if isinstance(item, Block):
                counts[item.key.stream] = counts.get(item.key.stream, 0) + item.n_samples
            elif isinstance(item, Gap):
                n = "?" if item.end_index is None else item.end_index - item.start_index
                emit({"event": "gap", "stream": str(item.key), "start": item.start_index,
                      "end": item.end_index, "reason": item.reason.value},
                     f"[gap] {item.key} {item.reason.value}: {n} samples from {item.start_index}")
            elif isinstance(item, VitalSample):
                pass  # shown with its VITALS frame

    async def go() -> None:
        async with src:
            task = asyncio.create_task(consume())
            last = time.monotonic()
            try:
                while not task.done():
                    if seconds is not None and time.monotonic() - t0 >= seconds:
                        break
                    left = None if seconds is None else seconds - (time.monotonic() - t0)
                    wait = every if left is None else min(every, left)
                    await asyncio.wait({task}, timeout=max(0.0, wait))
                    now = time.monotonic()
                    if now - last >= every or task.done() or (
                            seconds is not None and now - t0 >= seconds):
                        stats_event(now - last)
                        last = now
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    with contextlib.suppress(KeyboardInterrupt):
        run_async(go())
