"""BleSource end to end: bleak's real BlueZ backend -> private dbus-daemon -> virtual BlueZ."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from edge.sim.bluez import PrivateBus, VirtualBlueZ, dbus_daemon_path, system_bus_env
from edge.sim.bluez.wearables import heart_rate_wearable, vendor_wearable
from edge.sources.backoff import Backoff
from edge.sources.ble import BleSource, classify
from edge.types import Block, Gap, GapReason, VitalKind, VitalSample

if os.environ.get("EDGE_REQUIRE_DBUS") and dbus_daemon_path() is None:
    raise RuntimeError("EDGE_REQUIRE_DBUS is set but dbus-daemon is missing")

pytestmark = pytest.mark.skipif(dbus_daemon_path() is None,
                                reason="dbus-daemon missing (Debian package 'dbus'; .ci/run "
                                       "installs it)")

TRACE = Path(__file__).resolve().parents[1] / "edge" / "demo_data" / "mitdb208-5min.vetrace"
ADDR = "C0:FF:EE:00:00:01"


@pytest.fixture(scope="module")
def bus():  # type: ignore[no-untyped-def]
    with PrivateBus() as b, system_bus_env(b.address):
        yield b


def fast_backoff() -> Backoff:
    return Backoff(initial=0.02, maximum=0.2)


def run(coro, timeout: float = 40.0):  # type: ignore[no-untyped-def]
    async def guarded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(guarded())


async def collect(src: BleSource, items: list, until) -> None:  # type: ignore[no-untyped-def]
    async for item in src:
        items.append(item)
        if until():
            return


def test_vendor_stream_disconnects_give_exact_gaps(bus, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    n_drops = 5

    async def main() -> None:
        p, fw = vendor_wearable(ADDR, TRACE, mtu=23, speed=6.0, frame_s=0.1)
        async with VirtualBlueZ(bus.address, [p]) as _bz:
            fw_task = asyncio.create_task(fw.run())
            before = set(asyncio.all_tasks())
            src = BleSource(ADDR, backoff=fast_backoff(), silence_timeout=5.0, connect_timeout=5)
            items: list = []
            async with src:
                async def faults() -> None:
                    for _ in range(n_drops):
                        while not p.connected or src.frames.stats.blocks < 5:
                            await asyncio.sleep(0.02)
                        await asyncio.sleep(0.3)
                        assert p.drop_link()
                        await asyncio.sleep(0.05)
                    while src.stats.reconnects < n_drops or src.link.notifications == 0 \
                            or src.link.resume_latencies.__len__() < n_drops:
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(0.5)
                ft = asyncio.create_task(faults())
                await collect(src, items, lambda: ft.done())
                await ft
            fw_task.cancel()
            await asyncio.gather(fw_task, return_exceptions=True)
            leaked = [t for t in asyncio.all_tasks() - before
                      if not t.done() and t is not asyncio.current_task()
                      and t.get_name().startswith("ble:")]
            assert leaked == []
            assert src.stats.reconnects == n_drops
            assert src.link.link_losses == n_drops
            blocks = [i for i in items if isinstance(i, Block)]
            gaps = [i for i in items if isinstance(i, Gap)]
            assert blocks and all(b.key.stream == "ecg" for b in blocks)
            closed = [(g.start_index, g.end_index) for g in gaps if g.end_index is not None]
            opened = [g for g in gaps if g.end_index is None]
            assert len(opened) == n_drops
            assert all(g.reason == GapReason.DISCONNECT for g in gaps)
            # the lost ranges the device recorded, before the first connection excluded
            lost = [r for r in fw.lost_ranges() if r[0] > 0]
            assert closed == lost
            # blocks + gaps cover the stream without overlap
            covered = sorted([(b.first_index, b.end_index) for b in blocks] + closed)
            for (_a0, a1), (b0, _b1) in zip(covered, covered[1:], strict=False):
                assert a1 == b0
            assert src.frames.decoder.stats.errors == 0

    run(main())
    assert any("link lost" in r.getMessage() for r in caplog.records)


def test_hrs_vitals_silent_link_and_refused_connects(bus, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)

    async def main() -> None:
        p, fw = heart_rate_wearable(ADDR, period=0.1)
        p.refuse_connects = 2  # bleak itself retries le-connection-abort-by-local: use another
        p.refuse_error = "Connection rejected due to limited resources (0x0d)"
        async with VirtualBlueZ(bus.address, [p]):
            fw_task = asyncio.create_task(fw.run())
            src = BleSource(ADDR, backoff=fast_backoff(), silence_timeout=0.5, connect_timeout=5,
                            error_log_interval_s=0)
            items: list = []
            async with src:
                async def faults() -> None:
                    while src.stats.vitals < 5:
                        await asyncio.sleep(0.02)
                    p.mute = True
                    while src.link.silent_links < 1:
                        await asyncio.sleep(0.02)
                    p.mute = False
                    while src.stats.reconnects < 1 or src.stats.vitals < 10:
                        await asyncio.sleep(0.02)
                ft = asyncio.create_task(faults())
                await collect(src, items, lambda: ft.done())
                await ft
            fw_task.cancel()
            await asyncio.gather(fw_task, return_exceptions=True)
            vit = [i for i in items if isinstance(i, VitalSample)]
            assert vit and all(v.kind == VitalKind.HEART_RATE for v in vit)
            assert all(40 <= v.value <= 120 for v in vit)
            assert src.body_sensor_location == "chest"
            assert p.stats.refused == 2
            assert src.stats.errors.get("connect_no_slots") == 2
            assert src.link.attempts == 4  # 2 refused, the connect, the reconnect after silence
            assert src.link.silent_links == 1 and src.stats.reconnects == 1

    run(main())
    msgs = [r.getMessage() for r in caplog.records]
    assert any("no free connection slot" in m for m in msgs)
    assert any("silent link" in m for m in msgs)


def test_classify_known_bluez_failures() -> None:
    from bleak.exc import BleakDBusError
    assert classify(BleakDBusError("org.bluez.Error.Failed",
                                   ["le-connection-abort-by-local"])) == "abort_by_local"
    assert classify(BleakDBusError("org.bluez.Error.InProgress", [])) == "in_progress"
    assert classify(BleakDBusError("org.bluez.Error.NotReady", [])) == "not_ready"
    assert classify(TimeoutError()) == "timeout"


def test_abort_by_local_is_retried_inside_bleak(bus) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        p, fw = heart_rate_wearable(ADDR, period=0.1)
        p.refuse_connects = 2  # le-connection-abort-by-local, as BlueZ >= 5.62 reports it
        async with VirtualBlueZ(bus.address, [p]):
            fw_task = asyncio.create_task(fw.run())
            src = BleSource(ADDR, backoff=fast_backoff(), silence_timeout=2, connect_timeout=5)
            items: list = []
            async with src:
                await collect(src, items, lambda: len(items) >= 3)
            fw_task.cancel()
            await asyncio.gather(fw_task, return_exceptions=True)
            assert p.stats.refused == 2 and p.stats.connects == 1
            assert src.link.attempts == 1  # bleak's connect() absorbed both aborts

    run(main())
