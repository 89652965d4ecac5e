"""``edge simulate``: virtual devices that speak the real protocols over real (pseudo) links."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from edge.cli.common import run_async


@click.group()
def simulate() -> None:
    """Run a virtual wearable for a gateway (or `edge serial monitor`) to connect to."""


@simulate.command("serial")
@click.option("--trace", "trace", type=click.Path(exists=True), required=True,
              help="What to stream: a trace, a WFDB record (no extension) or a CSV file.")
@click.option("--fs", type=float, default=None, help="Sample rate of a CSV file.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="x real time.")
@click.option("--fast", is_flag=True, help="As fast as the reader takes it (ignores --speed).")
@click.option("--drop", type=click.FloatRange(0, 1), default=0.0,
              help="Drop each SAMPLES frame with this probability.")
@click.option("--corrupt", type=click.FloatRange(0, 1), default=0.0,
              help="Corrupt one byte of each SAMPLES frame with this probability.")
@click.option("--disconnect-after", type=float, default=None,
              help="Close the pty after this many seconds of stream.")
@click.option("--reconnect-after", type=float, default=None,
              help="Re-open a new pty this many stream seconds after the disconnect.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the faults.")
@click.option("--link", type=click.Path(dir_okay=False), default=None,
              help="Keep a symlink here to the current pty (stable across reconnects).")
@click.option("--format", "sample_format", type=click.Choice(["int16", "int24"]),
              default="int16", show_default=True, help="Sample format on the wire.")
@click.option("--frame-s", type=float, default=0.25, show_default=True,
              help="Seconds of samples per SAMPLES frame.")
@click.option("--capture", type=click.Path(dir_okay=False), default=None,
              help="Also write every byte sent to this file (for `edge frames decode`).")
@click.option("--faults", "faults_path", type=click.Path(dir_okay=False), default=None,
              help="Write injected faults here as JSON lines (default: stderr).")
def serial(trace: str, fs: float | None, speed: float, fast: bool, drop: float, corrupt: float,
           disconnect_after: float | None, reconnect_after: float | None, seed: int,
           link: str | None, sample_format: str, frame_s: float, capture: str | None,
           faults_path: str | None) -> None:
    """Stream TRACE as a wearable on a pseudo-terminal, through the real protocol.

    Prints the port to open (the --link path if given) on the first line, then
    streams until the recording ends or Ctrl-C. Every dropped, corrupted or
    disconnected frame is reported as a JSON line with its sample range.
    """
    import firmware_bridge as fb
    from edge.sim.serial_device import VirtualSerialDevice

    faults_fh = open(faults_path, "w") if faults_path else sys.stderr  # noqa: SIM115
    device = VirtualSerialDevice(
        trace, speed=None if fast else speed, fs=fs, link=link, frame_s=frame_s,
        sample_format=fb.SampleFormat[sample_format.upper()], drop=drop, corrupt=corrupt,
        disconnect_after=disconnect_after, reconnect_after=reconnect_after, seed=seed,
        capture=capture, faults_log=faults_fh)

    async def go() -> dict[str, Any]:
        task = asyncio.create_task(device.run())
        ready = asyncio.ensure_future(device.ready.wait())
        await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            task.result()
        click.echo(device.port())
        sys.stdout.flush()
        stats = await task
        return {"event": "done", **vars(stats), "faults": len(device.faults),
                "acknowledged": device.finished_ok}

    try:
        out = run_async(go())
    except KeyboardInterrupt:
        out = {"event": "interrupted", **vars(device.stats), "faults": len(device.faults)}
    finally:
        if faults_path:
            faults_fh.close()
    click.echo(json.dumps(out), err=True)


@simulate.command("ble")
@click.option("--trace", "trace", type=click.Path(exists=True), required=True,
              help="What the waveform wearable streams: a trace, a WFDB record or a CSV file.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="x real time.")
@click.option("--mtu", type=int, default=247, show_default=True,
              help="ATT MTU of the waveform wearable (notifications carry MTU - 3 bytes).")
@click.option("--disconnect-every", type=float, default=None,
              help="Drop the waveform wearable's link every this many seconds.")
@click.option("--seconds", type=float, default=None, help="Stop after this long.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the thermometer, BP cuff and oximeter measurement series.")
@click.option("--bp-passkey", type=click.IntRange(0, 999999), default=None,
              help="The BP cuff needs passkey entry with this passkey (default: Just Works).")
def ble(trace: str, speed: float, mtu: int, disconnect_every: float | None,
        seconds: float | None, seed: int, bp_passkey: int | None) -> None:
    """A virtual BlueZ on a private dbus-daemon with virtual wearables (waveform stream from
    TRACE, heart rate, oximeter, thermometer, BP cuff).

    Prints `export DBUS_SYSTEM_BUS_ADDRESS=...` first: in that shell, `edge ble scan`,
    `edge ble inspect` and `edge record --ble` talk to the virtual devices through bleak's
    real BlueZ backend. The thermometer, BP cuff and oximeter indicate a seeded series
    of measurements (with time stamps and special values) once subscribed. Faults are
    reported as JSON lines on stderr.
    """
    from edge.ble import gatt
    from edge.sim.bluez import PrivateBus, VirtualBlueZ
    from edge.sim.bluez.wearables import (
        IndicationFirmware,
        bp_cuff,
        bp_scenario,
        heart_rate_wearable,
        oximeter,
        plx_spot_scenario,
        temperature_scenario,
        thermometer,
        vendor_wearable,
    )

    async def go(address: str) -> dict[str, Any]:
        wave, fw = vendor_wearable("C0:FF:EE:00:00:01", trace, mtu=mtu, speed=speed)
        hrm, hfw = heart_rate_wearable("C0:FF:EE:00:00:02")
        ox, th = oximeter("C0:FF:EE:00:00:03"), thermometer("C0:FF:EE:00:00:04")
        bp = bp_cuff("C0:FF:EE:00:00:05", passkey=bp_passkey)
        devices = [wave, hrm, ox, th, bp]
        episodic = [IndicationFirmware(th, gatt.TEMPERATURE_MEASUREMENT,
                                       temperature_scenario(seed), period=2.0),
                    IndicationFirmware(bp, gatt.BLOOD_PRESSURE_MEASUREMENT, bp_scenario(seed),
                                       period=2.0),
                    IndicationFirmware(ox, gatt.PLX_SPOT_CHECK, plx_spot_scenario(seed),
                                       period=2.0)]
        async with VirtualBlueZ(address, devices):
            # only now does org.bluez exist on the bus: tell the user where to connect
            click.echo(f"export DBUS_SYSTEM_BUS_ADDRESS={address}")
            sys.stdout.flush()
            tasks = [asyncio.create_task(fw.run()), asyncio.create_task(hfw.run())]
            tasks += [asyncio.create_task(e.run()) for e in episodic]

            async def chaos() -> None:
                while disconnect_every:
                    await asyncio.sleep(disconnect_every)
                    if wave.drop_link():
                        click.echo(json.dumps({"event": "disconnect", "device": wave.address}),
                                   err=True)
            tasks.append(asyncio.create_task(chaos()))
            try:
                await asyncio.wait(tasks[:1], timeout=seconds)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return {"event": "done", "frames_sent": fw.frames_sent, "samples_sent": fw.samples_sent,
                "lost_ranges": fw.lost_ranges()}

    with PrivateBus() as bus:
        try:
            out = run_async(go(bus.address))
        except KeyboardInterrupt:
            out = {"event": "interrupted"}
    click.echo(json.dumps(out), err=True)
