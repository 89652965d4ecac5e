"""``edge record``: write what a source delivers to a trace file."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from edge.cli.common import config_option, get_config, run_async
from edge.config import TraceConfig
from edge.errors import SourceError
from edge.types import Block, StreamKey

if TYPE_CHECKING:
    from edge.sources.base import Source


async def record_source(src: Source, out: str, metadata: dict[str, object],
                        max_seconds: float | None = None,
                        config: TraceConfig | None = None) -> int:
    """Copy every item ``src`` yields into a new trace at ``out``; return the item count.

    ``config`` sets the fsync schedule and record sizes (default: :class:`TraceConfig`).
    """
    from edge.trace.format import TraceWriter

    n = 0
    ends: dict[StreamKey, int] = {}
    with TraceWriter(out, metadata, config=config or TraceConfig()) as writer:
        async with src:
            first_arrival: float | None = None
            async for item in src:
                writer.write(item)
                n += 1
                if isinstance(item, Block):
                    ends[item.key] = item.end_index
                if first_arrival is None:
                    first_arrival = item.arrival
                if max_seconds is not None and item.arrival - first_arrival >= max_seconds:
                    break
        # reference labels travel with a replayed recording (WFDB annotations)
        for ann in getattr(src, "annotations", []):
            if ann.index < ends.get(ann.key, 0):
                writer.annotate(ann)
    return n


@click.command()
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--from", "from_path", type=click.Path(), default=None,
              help="Record from a replayed file (trace, WFDB or CSV).")
@click.option("--serial", "serial_port", default=None,
              help="Record from a device on this serial port (path or usb:VID:PID[:SERIAL]).")
@click.option("--ble", "ble_address", default=None,
              help="Record from a BLE wearable at this address (AA:BB:CC:DD:EE:FF).")
@click.option("--baud", type=int, default=921600, show_default=True, help="With --serial.")
@click.option("--device", default="", help="With --serial: device name in the trace "
              "(default: the device id from its HELLO).")
@click.option("--stop-on-disconnect", is_flag=True,
              help="With --serial: end the recording when the device disconnects "
                   "(default: reconnect and go on until Ctrl-C or --seconds).")
@click.option("--fs", type=float, default=None, help="Sample rate of a CSV input.")
@click.option("--speed", type=float, default=None, help="Replay pace (default: fast).")
@click.option("--seconds", type=float, default=None, help="Stop after this much stream time.")
@config_option
def record(out: str, from_path: str | None, serial_port: str | None, ble_address: str | None,
           baud: int, device: str,
           stop_on_disconnect: bool, fs: float | None, speed: float | None,
           seconds: float | None, config_path: str | None) -> None:
    """Record a source into the trace file OUT (append-only, crash-safe).

    The source is a replayed file (--from) or a live device (--serial); give one.
    Forced to disk every [trace] fsync_s (1 s): a power cut loses at most about that.
    """
    trace_cfg = get_config(config_path).trace
    if sum(x is not None for x in (from_path, serial_port, ble_address)) != 1:
        raise click.UsageError("give exactly one of --from PATH, --serial PORT or --ble ADDRESS")
    src: Source
    if ble_address is not None:
        from edge.sources.ble import BleSource

        src = BleSource(ble_address, device=device, reconnect=not stop_on_disconnect)
        meta = {"recorded_at": time.time(), "source": f"ble:{ble_address}"}
    elif serial_port is not None:
        from edge.sources.serial import SerialSource

        src = SerialSource(serial_port, baud=baud, device=device,
                           reconnect=not stop_on_disconnect)
        meta = {"recorded_at": time.time(), "source": f"serial:{serial_port}", "baud": baud}
    else:
        assert from_path is not None
        from edge.sources.open import open_replay

        src = open_replay(from_path, fs=fs, speed=speed)
        meta = {"recorded_at": time.time(), "source": f"replay:{from_path}"}
    try:
        n = run_async(record_source(src, out, meta, seconds, trace_cfg))
    except KeyboardInterrupt:
        click.echo(f"{out}: recording stopped", err=True)
        return
    except SourceError as exc:  # pragma: no cover - run_async already converts
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{out}: {n} items recorded")
