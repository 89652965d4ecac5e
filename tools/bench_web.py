"""What open web views cost the daemon: CPU over its baseline, and how fresh the updates are.

    python tools/bench_web.py [--tabs 20] [--seconds 30] [--browser] [--json]

Starts a real ``edge run`` replaying MIT-BIH 208 (the shipped 5-minute demo
trace: 5 minutes) at real time with the web view on loopback, measures the
daemon's CPU (utime + stime from /proc) for ``--seconds`` with no client, then
with ``--tabs`` clients open. Clients: server-sent-event readers that also
fetch the episode list and the status every 2 s, as the page does (default), or
with ``--browser`` real pages in Debian's headless Chromium (Playwright), whose
own CPU is not counted (they compete for the same 2 cores, so the figure is
then an upper bound). Also reports the age of each update when a client
receives it, and from the arrival of the oldest block in it to the client
(sample-to-client: at most one tick, 1/push_hz, of waiting plus transport;
the browser draws it on its next animation frame), and whether any client was
dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "edge" / "demo_data" / "mitdb208-5min.vetrace"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_daemon(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    cfg = tmp / "edge.toml"
    cfg.write_text(f'[store]\npath = "{tmp / "outbox.sqlite3"}"\n[ops]\nmetrics_port = -1\n'
                   '[web]\nlisten = "127.0.0.1:0"\n'
                   f'[[sources]]\ntype = "replay"\npath = "{TRACE}"\nspeed = 1.0\n'
                   'device = "bed-7"\n')
    proc = subprocess.Popen([sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[int] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"web view on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                found.append(int(m.group(1)))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        proc.kill()
        raise SystemExit("the daemon did not start its web view")
    return proc, found[0]


def status(port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status") as r:
        return dict(json.load(r))


def measure(pid: int, seconds: float, port: int | None = None, seen: list | None = None) -> float:
    """Percent of one core the process used over ``seconds`` (and the status half-way)."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds / 2)
    if port is not None and seen is not None:
        seen.append(status(port))
    time.sleep(seconds / 2)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


async def sse_clients(port: int, tabs: int, seconds: float) -> dict:
    import httpx

    ages: list[float] = []
    lags: list[float] = []
    messages = 0

    async def tab(c: httpx.AsyncClient) -> None:
        nonlocal messages

        async def poll() -> None:
            while True:
                await c.get("/api/status")
                await c.get("/api/episodes?limit=50")
                await asyncio.sleep(2.0)

        poller = asyncio.create_task(poll())
        try:
            async with c.stream("GET", "/api/live") as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        msg = json.loads(line[6:])
                        messages += 1
                        if "t" in msg:
                            ages.append(time.time() - msg["t"])
                        if msg["type"] == "tick" and msg["streams"]:  # block arrival -> here
                            lags.append(time.time() - msg["t"] + msg["waited_ms"] / 1000)
        finally:
            poller.cancel()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        tasks = [asyncio.create_task(tab(c)) for _ in range(tabs)]
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ages.sort()
    lags.sort()
    return {"messages": messages,
            "sample_to_client_ms_p50": round(1000 * statistics.median(lags), 1)
            if lags else None,
            "sample_to_client_ms_max": round(1000 * lags[-1], 1) if lags else None,
            "update_age_ms_p50": round(1000 * statistics.median(ages), 1) if ages else None,
            "update_age_ms_p99": round(1000 * ages[int(0.99 * (len(ages) - 1))], 1)
            if ages else None}


def browser_tabs(port: int, tabs: int):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=os.environ.get("EDGE_CHROMIUM",
                                                                "/usr/bin/chromium"), args=args)
    pages = []
    for _ in range(tabs):
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        pages.append(page)
    return pw, browser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tabs", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--browser", action="store_true", help="real Chromium pages")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_daemon(Path(tmp))
        try:
            time.sleep(5.0)  # models loaded, pipeline warm
            baseline = measure(proc.pid, a.seconds)
            clients: dict = {}
            seen: list[dict] = []
            if a.browser:
                pw, browser = browser_tabs(port, a.tabs)
                time.sleep(3.0)
                with_tabs = measure(proc.pid, a.seconds, port, seen)
                browser.close()
                pw.stop()
            else:
                box: list[float] = []
                t = threading.Thread(
                    target=lambda: box.append(measure(proc.pid, a.seconds, port, seen)))
                t.start()
                clients = asyncio.run(sse_clients(port, a.tabs, a.seconds))
                t.join()
                with_tabs = box[0]
            final = status(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    out = {"tabs": a.tabs, "seconds": a.seconds, "clients": "chromium" if a.browser else "sse",
           "daemon_cpu_pct_baseline": round(baseline, 2),
           "daemon_cpu_pct_with_tabs": round(with_tabs, 2),
           "daemon_cpu_pct_over_baseline": round(with_tabs - baseline, 2),
           "clients_connected": seen[0]["web"]["clients"] if seen else None,
           "dropped_slow_clients": final["web"]["dropped_slow_clients"],
           "pipeline_queue_depth": final["pipeline"]["queue_depth"], **clients}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
