"""Scan filters, HTS/BPS/PLX spot-check in BleSource, pairing agent, `edge ble` CLI:
end to end through bleak's real BlueZ backend against the virtual BlueZ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.ble import gatt
from edge.ble.agent import PairingError, bonded_devices, pair
from edge.ble.scan import ScanFilter
from edge.cli.main import cli
from edge.errors import ConfigError, SourceError
from edge.sim.bluez import PrivateBus, VirtualBlueZ, dbus_daemon_path, system_bus_env
from edge.sim.bluez.wearables import (
    IndicationFirmware,
    bp_cuff,
    bp_scenario,
    heart_rate_wearable,
    oximeter,
    plx_spot_scenario,
    temperature_scenario,
    thermometer,
)
from edge.sources.backoff import Backoff
from edge.sources.ble import BleSource
from edge.types import VITAL_UNITS, VitalSample

pytestmark = pytest.mark.skipif(dbus_daemon_path() is None,
                                reason="dbus-daemon missing (Debian package 'dbus')")

TRACE = Path(__file__).resolve().parents[1] / "edge" / "demo_data" / "mitdb208-5min.vetrace"


@pytest.fixture(scope="module")
def bus():  # type: ignore[no-untyped-def]
    with PrivateBus() as b, system_bus_env(b.address):
        yield b


def run(coro, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    async def guarded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


def fast() -> Backoff:
    return Backoff(initial=0.02, maximum=0.2)


class BlueZThread:
    """The virtual BlueZ in its own event loop and thread, for CLI commands that run
    ``asyncio.run`` themselves. Stops by itself when the block ends."""

    def __init__(self, address: str, peripherals, firmware=()) -> None:  # type: ignore[no-untyped-def]
        self.bz = VirtualBlueZ(address, peripherals)
        self.firmware = list(firmware)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def go() -> None:
            self._stop = asyncio.Event()
            async with self.bz:
                tasks = [asyncio.create_task(f.run()) for f in self.firmware]
                self._ready.set()
                await self._stop.wait()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.run_until_complete(go())
        self._loop.close()

    def __enter__(self) -> VirtualBlueZ:
        self._thread.start()
        assert self._ready.wait(10)
        return self.bz

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive()


async def collect_vitals(src: BleSource, out: list, n: int) -> None:  # type: ignore[type-arg]
    async for item in src:
        if isinstance(item, VitalSample):
            out.append(item)
            if len(out) >= n:
                return


# ------------------------------------------------------------------------ 1. scan filters

def test_scan_filters_bind_only_matching_devices(bus) -> None:  # type: ignore[no-untyped-def]
    a, afw = heart_rate_wearable("C0:FF:EE:00:01:01", name="VE-HRM-0042", period=0.1)
    b, bfw = heart_rate_wearable("C0:FF:EE:00:01:02", name="VE-HRM-0099", period=0.1, seed=1)
    ox = oximeter("C0:FF:EE:00:01:03", name="VE-SPO2-0042")
    th = thermometer("C0:FF:EE:00:01:04", name="VE-TEMP-0042")
    thfw = IndicationFirmware(th, gatt.TEMPERATURE_MEASUREMENT, temperature_scenario(3))

    async def main() -> None:
        async with VirtualBlueZ(bus.address, [a, b, ox, th]):
            fws = [asyncio.create_task(f.run()) for f in (afw, bfw, thfw)]
            # HRS + name of patient 42 -> a; allow-list + name -> the thermometer only;
            # a filter nobody passes -> never connects, counted as not found
            s1 = BleSource(None, backoff=fast(), scan_timeout=3, scan_filter=ScanFilter.build(
                ["180d"], r"-0042$"))
            s2 = BleSource(None, backoff=fast(), scan_timeout=3, scan_filter=ScanFilter.build(
                name_pattern="^VE-TEMP", address_allow=["c0:ff:ee:00:01:04", "C0:FF:EE:00:01:03"]))
            s3 = BleSource(None, backoff=fast(), scan_timeout=0.3, scan_filter=ScanFilter.build(
                ["1810"]))
            v1: list = []
            v2: list = []
            async with s1, s2, s3:
                await asyncio.gather(collect_vitals(s1, v1, 3), collect_vitals(s2, v2, 2))
                while s3.stats.errors.get("connect_not_found", 0) < 1:
                    await asyncio.sleep(0.05)
            assert s1.address == a.address and s1.device == "c0ffee000101"
            assert s2.address == th.address
            assert s3.address is None
            assert {v.key.device for v in v1} == {"c0ffee000101"}
            assert a.stats.connects == 1 and th.stats.connects == 1
            assert b.stats.connects == 0 and ox.stats.connects == 0

            # two sources with the same filter never share a device
            s4 = BleSource(None, backoff=fast(), scan_timeout=3,
                           scan_filter=ScanFilter.build(["0000180d-0000-1000-8000-00805f9b34fb"]))
            s5 = BleSource(None, backoff=fast(), scan_timeout=3,
                           scan_filter=ScanFilter.build(["180D"]))
            v4: list = []
            v5: list = []
            async with s4, s5:
                await asyncio.gather(collect_vitals(s4, v4, 2), collect_vitals(s5, v5, 2))
            assert {s4.address, s5.address} == {a.address, b.address}
            assert ox.stats.connects == 0
            for t in fws:
                t.cancel()
            await asyncio.gather(*fws, return_exceptions=True)

    run(main())


def test_scan_filter_config_validation() -> None:
    from edge.config import SourceConfig
    from edge.sources.ble import build_ble

    with pytest.raises(ConfigError, match="address.*or scan filters"):
        build_ble(SourceConfig(type="ble"), 0)
    with pytest.raises(ConfigError, match="name_pattern"):
        build_ble(SourceConfig(type="ble", name_pattern="("), 0)
    with pytest.raises(ConfigError, match="not a service UUID"):
        build_ble(SourceConfig(type="ble", service_uuids=("xyz",)), 0)
    with pytest.raises(SourceError):
        BleSource(None)
    src = build_ble(SourceConfig(type="ble", service_uuids=("1822",), name_pattern="^VE-"), 1)
    assert src.address is None and src.scan_filter is not None
    assert src.scan_filter.matches("C0:FF:EE:00:00:03", "VE-SPO2",
                                   [gatt.PULSE_OXIMETER_SERVICE])
    assert not src.scan_filter.matches("C0:FF:EE:00:00:03", "XX", [gatt.PULSE_OXIMETER_SERVICE])


# ------------------------------------------------- 2. HTS / BPS / PLX spot-check in the source

def test_hts_bps_plx_spot_values_units_and_times_exact(bus) -> None:  # type: ignore[no-untyped-def]
    seed = 11
    th, bp, ox = (thermometer("C0:FF:EE:00:02:01"), bp_cuff("C0:FF:EE:00:02:02"),
                  oximeter("C0:FF:EE:00:02:03"))
    series = {th.address: (gatt.TEMPERATURE_MEASUREMENT, temperature_scenario(seed)),
              bp.address: (gatt.BLOOD_PRESSURE_MEASUREMENT, bp_scenario(seed)),
              ox.address: (gatt.PLX_SPOT_CHECK, plx_spot_scenario(seed))}
    fws = [IndicationFirmware(p, *series[p.address], period=0.03) for p in (th, bp, ox)]

    async def main() -> None:
        async with VirtualBlueZ(bus.address, [th, bp, ox]):
            tasks = [asyncio.create_task(f.run()) for f in fws]
            srcs = [BleSource(p.address, backoff=fast(), silence_timeout=60) for p in (th, bp, ox)]
            got: dict[str, list] = {s.address: [] for s in srcs}
            want = {addr: [(k, v, m.stamp) for m in ms for k, v in m.values if v is not None]
                    for addr, (_c, ms) in series.items()}
            async with contextlib.AsyncExitStack() as stack:
                for s in srcs:
                    await stack.enter_async_context(s)
                await asyncio.gather(*(collect_vitals(s, got[s.address], len(want[s.address]))
                                       for s in srcs))
                wall_minus_mono = time.time() - time.monotonic()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for s in srcs:
                exp = want[s.address]
                assert [(v.kind, v.value, v.unit) for v in got[s.address]] == \
                    [(k, val, VITAL_UNITS[k]) for k, val, _ in exp]
                for v, (_k, _val, stamp) in zip(got[s.address], exp, strict=True):
                    if stamp is None:
                        assert v.device_time == v.arrival
                    else:  # the device's stamp, on the gateway's clock
                        assert abs(v.device_time + wall_minus_mono - stamp.timestamp()) < 1.0
            units = {v.unit for v in got[th.address]} | {v.unit for v in got[bp.address]}
            assert units == {"Cel", "mm[Hg]", "/min"}
            specials = {addr: sum(v is None for m in ms for _k, v in m.values)
                        for addr, (_c, ms) in series.items()}
            errs = [s.stats.errors for s in srcs]
            assert errs[0].get("temperature_special_value") == specials[th.address] == 2
            assert errs[1].get("bp_special_value") == specials[bp.address] == 2
            assert errs[2].get("plx_spot_special_value") == specials[ox.address] == 1
            assert all(v.value == v.value and v.value not in (float("inf"), float("-inf"))
                       for vs in got.values() for v in vs)

    run(main())


# ------------------------------------------------------------------------ 3. pairing agent

def test_just_works_and_passkey_pairing(bus) -> None:  # type: ignore[no-untyped-def]
    jw = bp_cuff("C0:FF:EE:00:03:01", name="VE-BP-JW")
    pk = bp_cuff("C0:FF:EE:00:03:02", name="VE-BP-PK", passkey=123456)

    async def main() -> None:
        async with VirtualBlueZ(bus.address, [jw, pk]) as bz:
            r = await pair(jw.address, timeout=10)
            assert r.paired and r.agent_requests == []  # Just Works: the agent is not asked
            # passkey device with a Just Works agent: refused, one line
            with pytest.raises(PairingError, match="AuthenticationFailed") as ei:
                await pair(pk.address, timeout=10)
            assert "\n" not in str(ei.value)
            with pytest.raises(PairingError, match=r"wrong passkey.*AuthenticationFailed"):
                await pair(pk.address, capability="KeyboardOnly", passkey=654321, timeout=10)
            with pytest.raises(PairingError, match="AuthenticationRejected"):
                await pair(pk.address, capability="KeyboardOnly", timeout=10)  # no passkey
            r = await pair(pk.address, capability="KeyboardOnly", passkey=123456, timeout=10)
            assert r.agent_requests == ["RequestPasskey"]
            assert bz.pairings == [(jw.address, "just_works"), (pk.address, "passkey")]
            assert bz.agent is None  # unregistered after each pairing
            rows = await bonded_devices()
            assert [(x["address"], x["bonded"], x["trusted"]) for x in rows] == \
                [(jw.address, True, True), (pk.address, True, True)]

    run(main())


def test_cli_pair_with_passkey_file_and_bonded(bus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pk = bp_cuff("C0:FF:EE:00:04:01", passkey=2468)
    other = thermometer("C0:FF:EE:00:04:02")
    runner = CliRunner()
    with BlueZThread(bus.address, [pk, other]):
        res = runner.invoke(cli, ["ble", "pair", pk.address, "--passkey", "111111",
                                  "--timeout", "10"])
        assert res.exit_code == 1
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and "org.bluez.Error.AuthenticationFailed" in lines[0]
        f = tmp_path / "passkey"
        f.write_text("002468\n")
        cfg = tmp_path / "edge.toml"
        cfg.write_text(f'[[sources]]\ntype = "ble"\naddress = "{pk.address}"\n'
                       f'agent_capability = "KeyboardOnly"\npasskey_file = "{f}"\n')
        res = runner.invoke(cli, ["ble", "pair", pk.address, "--config", str(cfg),
                                  "--timeout", "10"])
        assert res.exit_code == 0, res.output
        assert "paired, bonded and trusted (KeyboardOnly)" in res.output
        res = runner.invoke(cli, ["ble", "bonded", "--json"])
        assert res.exit_code == 0, res.output
        rows = json.loads(res.output)
        assert [(r["address"], r["bonded"], r["trusted"], r["adapter"]) for r in rows] == \
            [(pk.address, True, True, "hci0")]


# ------------------------------------------------------------------------ 4. CLI

def test_cli_scan_and_inspect_json(bus) -> None:  # type: ignore[no-untyped-def]
    hrm, _ = heart_rate_wearable("C0:FF:EE:00:05:01", name="VE-HRM")
    th = thermometer("C0:FF:EE:00:05:02")
    ox = oximeter("C0:FF:EE:00:05:03")
    runner = CliRunner()
    with BlueZThread(bus.address, [hrm, th, ox]):
        res = runner.invoke(cli, ["ble", "scan", "--timeout", "0.5", "--json"])
        assert res.exit_code == 0, res.output
        rows = {r["address"]: r for r in json.loads(res.output)}
        assert set(rows) == {hrm.address, th.address, ox.address}
        assert rows[hrm.address]["name"] == "VE-HRM"
        assert rows[hrm.address]["services"] == ["Heart Rate"]
        assert rows[th.address]["services"] == ["Health Thermometer"]
        assert all(-70 < r["rssi"] < -40 for r in rows.values())
        res = runner.invoke(cli, ["ble", "scan", "--timeout", "0.5", "--service", "1822",
                                  "--json"])
        assert [r["address"] for r in json.loads(res.output)] == [ox.address]

        res = runner.invoke(cli, ["ble", "inspect", th.address, "--json", "--timeout", "10"])
        assert res.exit_code == 0, res.output
        chars = {c["uuid"]: c for s in json.loads(res.output) for c in s["characteristics"]}
        assert chars[gatt.TEMPERATURE_TYPE]["value"] == "armpit"
        assert chars[gatt.BATTERY_LEVEL]["value"]["percent"] == 15
        assert chars[gatt.MODEL_NUMBER]["value"] == "VE-TEMP"
        assert chars[gatt.TEMPERATURE_MEASUREMENT]["properties"] == ["indicate"]


def test_cli_simulate_ble_prints_bus_and_stops_by_itself() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SYSTEM_BUS_ADDRESS"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "edge", "simulate", "ble", "--trace",
                             str(TRACE), "--seconds", "4", "--speed", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("export DBUS_SYSTEM_BUS_ADDRESS=unix:")
        address = first.split("=", 1)[1]
        res = CliRunner().invoke(cli, ["ble", "scan", "--timeout", "0.5", "--json"],
                                 env={"DBUS_SYSTEM_BUS_ADDRESS": address})
        assert res.exit_code == 0, res.output
        names = {r["name"] for r in json.loads(res.output)}
        assert {"VE-ECG", "VE-HRM", "VE-SPO2", "VE-TEMP", "VE-BP"} <= names
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(err.strip().splitlines()[-1])["event"] == "done"
    assert time.monotonic() - t0 < 25


# ------------------------------------------- 5. SAMPLES overtaking HELLO after a reconnect

def test_samples_before_hello_give_the_same_items_whatever_the_order() -> None:
    import dataclasses

    import numpy as np

    import firmware_bridge as fb
    from edge.sim.serial_device import VirtualSerialDevice
    from edge.types import Block, Gap

    async def frames():  # type: ignore[no-untyped-def]
        dev = VirtualSerialDevice(TRACE, speed=None, frame_s=0.1)
        await dev._scan()
        plan = next(iter(dev.plans.values()))
        hello = fb.Hello(device_id=0xB1, fw_version=(1, 0, 0), proto_min=1, proto_max=1,
                         streams=tuple(p.wire for p in dev.plans.values()))
        n = plan.frame_samples
        data = np.zeros((n, len(plan.wire.channels)))

        def samples(k: int) -> fb.Samples:
            return fb.Samples(stream_id=plan.stream_id, first_sample_index=k * n,
                              sample_format=plan.sample_format, data=plan.quantize(data))
        return hello, samples

    hello, samples = asyncio.run(frames())

    def session(order_second: str) -> tuple[list, BleSource]:
        src = BleSource("C0:FF:EE:00:09:01", device="w")
        out: list = []
        src._push = out.append  # type: ignore[method-assign]
        seq = iter(range(1000))

        def send(msg: fb.Message) -> None:
            src.frames.feed(fb.encode_frame(dataclasses.replace(msg, seq=next(seq))))
        src.frames.new_connection()
        if order_second == "hello_first":
            send(hello)
            send(samples(0))
        else:  # on the first connection too
            send(samples(0))
            send(hello)
        for k in range(1, 3):
            send(samples(k))
        src.connected = True
        src._link_lost()  # frames 3..5 are lost while the link is down
        src.frames.new_connection()
        if order_second == "hello_first":
            send(hello)
            send(samples(6))
        else:  # the race: a SAMPLES frame overtakes the HELLO of the new connection
            send(samples(6))
            send(hello)
        send(samples(7))
        return out, src

    ref, _ = session("hello_first")
    raced, src = session("samples_first")
    desc = [(type(i).__name__, getattr(i, "first_index", getattr(i, "start_index", None)),
             getattr(i, "end_index", None)) for i in ref]
    assert desc == [(type(i).__name__, getattr(i, "first_index", getattr(i, "start_index", None)),
                     getattr(i, "end_index", None)) for i in raced]
    gaps = [i for i in raced if isinstance(i, Gap)]
    assert [(g.start_index, g.end_index) for g in gaps][-1][1] == 6 * (raced[0].end_index
                                                                        - raced[0].first_index)
    assert sum(isinstance(i, Block) for i in raced) == 5
    assert src.frames.held_frames == 2 and src.frames.stats.errors.get("samples_before_hello") \
        is None
