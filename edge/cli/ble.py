"""``edge ble``: scan, inspect and pair BLE wearables (through BlueZ, via bleak)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from edge.cli.common import config_option
from edge.cli.common import run_async as _run_async

if TYPE_CHECKING:
    from edge.config import SourceConfig


def run_async(coro):  # type: ignore[no-untyped-def]
    """bleak and D-Bus failures are one line and a non-zero exit, like every edge failure."""
    from bleak.exc import BleakError
    from dbus_fast import DBusError

    try:
        return _run_async(coro)
    except DBusError as exc:
        raise click.ClickException(f"BlueZ: {exc.text} ({exc.type})") from exc
    except (BleakError, TimeoutError, OSError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


@click.group("ble")
def ble_group() -> None:
    """Bluetooth LE wearables: scan, inspect the GATT table, pair, list bonds."""


@ble_group.command("scan")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to scan.")
@click.option("--service", "services", multiple=True, help="Only devices advertising this "
              "service UUID (repeatable).")
@click.option("--name", "name_pattern", default=None, help="Only names containing this text.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def scan(timeout: float, services: tuple[str, ...], name_pattern: str | None,
         as_json: bool) -> None:
    """List advertising devices with RSSI and advertised services."""
    from bleak import BleakScanner

    from edge.ble.gatt import SERVICE_NAMES
    from edge.ble.scan import normalize_uuid
    from edge.ble.vendor import VENDOR_SERVICE

    async def go() -> list[dict[str, Any]]:
        # service_uuids only when filtering: bleak's default (None) is "no filter"
        extra: BleakScanner.ExtraArgs = {}
        if services:
            extra["service_uuids"] = [normalize_uuid(u) for u in services]
        found = await BleakScanner.discover(timeout=timeout, return_adv=True, **extra)
        rows = []
        for addr, (dev, adv) in found.items():
            name = dev.name or ""
            if name_pattern and name_pattern.lower() not in name.lower():
                continue
            rows.append({"address": addr, "name": name, "rssi": adv.rssi,
                         "services": [SERVICE_NAMES.get(u, "vitals-edge waveform"
                                                        if u == VENDOR_SERVICE else u)
                                      for u in adv.service_uuids]})
        return sorted(rows, key=lambda r: -r["rssi"])

    rows = run_async(go())
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'address':17}  {'rssi':>4}  {'name':16}  services")
    for r in rows:
        click.echo(f"{r['address']:17}  {r['rssi']:>4}  {r['name'][:16]:16}  "
                   f"{', '.join(r['services'])}")


def _describe(value: Any) -> Any:
    import dataclasses
    import enum
    from decimal import Decimal

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _describe(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, enum.Enum):
        return value.name if value.name else value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return value.hex(" ")
    if isinstance(value, tuple | list):
        return [_describe(v) for v in value]
    return value


@ble_group.command("inspect")
@click.argument("address")
@click.option("--timeout", type=float, default=20.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def inspect(address: str, timeout: float, as_json: bool) -> None:
    """Connect to ADDRESS and print its GATT table with decoded values."""
    from bleak import BleakClient

    from edge.ble import gatt

    async def go() -> list[dict[str, Any]]:
        out = []
        async with BleakClient(address, timeout=timeout) as client:
            for s in client.services:
                svc: dict[str, Any] = {
                    "uuid": s.uuid, "name": gatt.SERVICE_NAMES.get(s.uuid, s.description),
                    "characteristics": []}
                for c in s.characteristics:
                    entry: dict[str, Any] = {"uuid": c.uuid, "properties": c.properties,
                                             "name": gatt.DECODERS.get(c.uuid, (c.description,))[0]}
                    if "read" in c.properties:
                        try:
                            raw = bytes(await client.read_gatt_char(c))
                            entry["raw"] = raw.hex(" ")
                            entry["value"] = _describe(gatt.decode(c.uuid, raw))
                        except Exception as exc:  # noqa: BLE001 - shown, not fatal
                            entry["error"] = str(exc)
                    svc["characteristics"].append(entry)
                out.append(svc)
        return out

    table = run_async(go())
    if as_json:
        click.echo(json.dumps(table, default=str))
        return
    for s in table:
        click.echo(f"{s['name']} ({s['uuid']})")
        for c in s["characteristics"]:
            v = c.get("value", c.get("error", ""))
            click.echo(f"  {c['name']:28} [{','.join(c['properties'])}] {v}")


@ble_group.command("pair")
@click.argument("address")
@click.option("--passkey", type=click.IntRange(0, 999999), default=None,
              help="Passkey the device shows (passkey entry; implies --capability KeyboardOnly).")
@click.option("--passkey-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the passkey (default: passkey_file of the config's source).")
@click.option("--capability", type=click.Choice(["NoInputNoOutput", "KeyboardOnly"]),
              default=None, help="Agent IO capability (default: agent_capability of the "
              "config's ble source for ADDRESS, else NoInputNoOutput = Just Works).")
@click.option("--adapter", default=None, help="BlueZ adapter (default: the source's, hci0).")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@config_option
def pair(address: str, passkey: int | None, passkey_file: str | None, capability: str | None,
         adapter: str | None, timeout: float, config_path: str | None) -> None:
    """Pair (bond) with ADDRESS through BlueZ with a pairing agent, then trust it.

    Just Works, or passkey entry with --passkey / passkey_file. BlueZ keeps the bond
    and uses it on every reconnection; `edge ble bonded` lists bonded devices.
    """
    from edge.ble.agent import pair as do_pair
    from edge.sources.ble import ADDRESS_RE

    if not ADDRESS_RE.match(address):
        raise click.BadParameter("a BLE address looks like AA:BB:CC:DD:EE:FF", param_hint="ADDRESS")
    src = _source_for(config_path, address)
    if capability is None:
        capability = "KeyboardOnly" if passkey is not None else \
            (src.agent_capability if src else "NoInputNoOutput")
    passkey_file = passkey_file or (src.passkey_file if src else None) or None
    adapter = adapter or (src.adapter if src else "") or "hci0"
    res = run_async(do_pair(address, adapter=adapter, capability=capability, passkey=passkey,
                            passkey_file=passkey_file, timeout=timeout))
    click.echo(f"{res.address}: paired, bonded and trusted ({res.capability})")


def _source_for(config_path: str | None, address: str) -> SourceConfig | None:
    """The config's ble source for ``address`` (or its only ble source), for pairing defaults."""
    from edge.cli.common import get_config

    if config_path is None:
        return None
    ble = [s for s in get_config(config_path).sources if s.type == "ble"]
    exact = [s for s in ble if s.address.upper() == address.upper()
             or address.upper() in (a.upper() for a in s.address_allow)]
    if exact:
        return exact[0]
    return ble[0] if len(ble) == 1 else None


@ble_group.command("bonded")
@click.option("--adapter", default=None, help="Only this adapter (default: all).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def bonded(adapter: str | None, as_json: bool) -> None:
    """List the devices BlueZ has paired/bonded (Device1 Paired/Bonded)."""
    from edge.ble.agent import bonded_devices

    rows = run_async(bonded_devices(adapter))
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'address':17}  {'adapter':7}  {'name':16}  bonded  trusted  connected")
    for r in rows:
        click.echo(f"{r['address']:17}  {r['adapter']:7}  {r['name'][:16]:16}  "
                   f"{'yes' if r['bonded'] else 'no':6}  {'yes' if r['trusted'] else 'no':7}  "
                   f"{'yes' if r['connected'] else 'no'}")
