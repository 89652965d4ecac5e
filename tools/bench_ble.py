"""Forced BLE disconnects over the virtual BlueZ: reconnects, exact gaps, leaked tasks,
time from link loss to resumed data (p50/p99).

    python tools/bench_ble.py [--drops 100] [--mtu 23] [--json]

bleak's real BlueZ backend -> a private dbus-daemon -> edge.sim.bluez.VirtualBlueZ, with the
vitals-edge waveform wearable streaming MIT-BIH 208 (the demo trace) at 4x real time.
Needs dbus-daemon (Debian package dbus). Resume latency = link loss (seen by the gateway) to
the first notification of the next connection; it includes the gateway's backoff (first
delay 0.05-0.1 s here; 0.25-0.5 s with the default Backoff) and the virtual connect latency
(10 ms), not radio time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.sim.bluez import PrivateBus, VirtualBlueZ, system_bus_env  # noqa: E402
from edge.sim.bluez.wearables import vendor_wearable  # noqa: E402
from edge.sources.backoff import Backoff  # noqa: E402
from edge.sources.ble import BleSource  # noqa: E402
from edge.types import Block, Gap  # noqa: E402

TRACE = ROOT / "edge" / "demo_data" / "mitdb208-5min.vetrace"
ADDR = "C0:FF:EE:00:00:01"


async def bench(address: str, drops: int, mtu: int) -> dict:
    p, fw = vendor_wearable(ADDR, TRACE, mtu=mtu, speed=4.0, frame_s=0.1)
    async with VirtualBlueZ(address, [p]):
        fw_task = asyncio.create_task(fw.run())
        before = set(asyncio.all_tasks())
        src = BleSource(ADDR, backoff=Backoff(initial=0.1, maximum=1.0), silence_timeout=5)
        items: list = []

        async def faults() -> None:
            for _ in range(drops):
                blocks = src.frames.stats.blocks
                while not p.connected or src.frames.stats.blocks < blocks + 3:
                    await asyncio.sleep(0.01)
                p.drop_link()
            while len(src.link.resume_latencies) < drops:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)

        async with src:
            ft = asyncio.create_task(faults())
            async for item in src:
                items.append(item)
                if ft.done():
                    break
            await ft
        fw_task.cancel()
        await asyncio.gather(fw_task, return_exceptions=True)
        await asyncio.sleep(0.1)
        # bleak's per-loop BlueZ manager keeps one bus-watcher task for the loop's life
        leaked = [t.get_coro().__qualname__ for t in asyncio.all_tasks() - before
                  if not t.done() and t is not asyncio.current_task()
                  and "_monitor_bus_disconnect" not in t.get_coro().__qualname__]
    gaps = [i for i in items if isinstance(i, Gap)]
    closed = [(g.start_index, g.end_index) for g in gaps if g.end_index is not None]
    lost = [r for r in fw.lost_ranges() if r[0] > 0]
    lat = sorted(src.link.resume_latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else lat * 99
    return {"forced_disconnects": drops, "reconnects": src.stats.reconnects,
            "link_losses": src.link.link_losses,
            "open_gaps": sum(g.end_index is None for g in gaps),
            "closed_gaps": len(closed), "gaps_exact": closed == lost,
            "lost_samples": sum(b - a for a, b in lost),
            "blocks": sum(isinstance(i, Block) for i in items),
            "decoder_errors": src.frames.decoder.stats.errors, "leaked_tasks": leaked,
            "resume_p50_ms": round(1000 * statistics.median(lat), 1),
            "resume_p99_ms": round(1000 * q[98], 1), "resume_max_ms": round(1000 * lat[-1], 1),
            "mtu": mtu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drops", type=int, default=100)
    ap.add_argument("--mtu", type=int, default=23)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with PrivateBus() as bus, system_bus_env(bus.address):
        out = asyncio.run(bench(bus.address, args.drops, args.mtu))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:20} {v}")
    ok = out["reconnects"] == args.drops and out["gaps_exact"] and not out["leaked_tasks"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
