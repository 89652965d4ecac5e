"""The bedside web view in a real headless browser, against a real ``edge run``.

Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright; the daemon
replays MIT-BIH 208 (mitdb-ds1) through the full pipeline into its outbox.
What a person beside the bed would check: the page loads cleanly, the ECG
moves, beats carry their class, a stored episode shows up within 5 s, a
stopped daemon or a silent source turns the stale banner on, and the view
recovers by itself; with a token, nothing is served without it.

``EDGE_WEB_SCREENSHOT=PATH`` also writes the page's screenshot there (the
README's picture, ``docs/web-view.png``, comes from this test).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

TOKEN = "5f1c0e9a7b3d4c2e8f6a1b0c9d8e7f6a"
BEATS_SHOWN = "document.querySelector('[data-kind=ecg]').dataset.beats > 0"
DEMO_TRACE = Path(__file__).resolve().parent.parent / "edge" / "demo_data" / \
    "mitdb208-5min.vetrace"


class Daemon:
    """``edge -v run`` in a subprocess; its stderr is read continuously (never blocks it)."""

    def __init__(self, tmp_path: Path, sources: str, port: int = 0, extra: str = "") -> None:
        self.outbox = tmp_path / "outbox.sqlite3"
        cfg = tmp_path / "edge.toml"
        cfg.write_text(f'[store]\npath = "{self.outbox}"\n[ops]\nmetrics_port = -1\n'
                       f'[web]\nlisten = "127.0.0.1:{port}"\n{extra}\n{sources}')
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "-v", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._port = threading.Event()
        self.port = 0
        threading.Thread(target=self._read, daemon=True).start()
        if not self._port.wait(60):
            self.stop()
            raise AssertionError(f"the daemon never served the web view: {self.lines[-8:]}")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"web view on http://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                self._port.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def replay(path: Path, device: str, speed: float, loop: bool = True) -> str:
    return (f'[[sources]]\ntype = "replay"\npath = "{path}"\nspeed = {speed}\n'
            f'loop = {"true" if loop else "false"}\ndevice = "{device}"\n')


def wait_until(page, expression: str, timeout: float) -> None:
    """Poll a JS expression from here (Playwright's wait_for_function evaluates strings in
    the page, which the page's strict CSP forbids: no eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {expression}")
        time.sleep(0.1)


def first_stored_episode(outbox: Path, timeout: float) -> tuple[str, float]:
    """Poll the outbox (read-only) until an episode is stored: its id and when it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if outbox.exists():
            db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)
            try:
                row = db.execute("SELECT id FROM events ORDER BY created LIMIT 1").fetchone()
            except sqlite3.OperationalError:
                row = None  # the schema is not there yet
            finally:
                db.close()
            if row:
                return str(row[0]), time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"no episode stored within {timeout} s")


def test_the_page_shows_moving_ecg_beats_and_episodes_and_goes_stale_when_stopped(
        chromium, data_dir, tmp_path):
    record = data_dir / "mitdb-ds1" / "208"
    # 30x: 'frequent PVCs' (a 5-minute burden) is raised about 10 s after the start
    sources = replay(record, "bed-7", speed=30.0)
    daemon = Daemon(tmp_path, sources)
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        response = page.goto(daemon.url)
        assert response is not None and response.status == 200
        strip = page.wait_for_selector("[data-kind=ecg][data-beats]", timeout=20_000)
        assert strip is not None
        wait_until(page, BEATS_SHOWN, timeout=10)
        before = strip.screenshot()
        end_before = int(strip.get_attribute("data-end") or 0)
        time.sleep(1.0)
        after = strip.screenshot()
        end_after = int(strip.get_attribute("data-end") or 0)
        assert before != after, "the ECG strip did not move"
        assert end_after > end_before
        assert int(strip.get_attribute("data-beats") or 0) > 0
        # the numerics: heart rate from the ECG, a NEWS2 tile (partial: one input only)
        page.wait_for_selector(".card .num.hr .value", timeout=10_000)
        assert page.inner_text(".card .id") == "device bed-7"

        event_id, seen = first_stored_episode(daemon.outbox, timeout=90)
        page.wait_for_selector(f"#episodes tbody tr[data-id='{event_id}']",
                               timeout=max(100, int((seen + 5.0 - time.monotonic()) * 1000)))
        page.click(f"#episodes tbody tr[data-id='{event_id}']")
        page.wait_for_selector("#evidence-plot canvas", timeout=10_000)
        wait_until(page, "document.getElementById('evidence-notes').textContent"
                         ".startsWith('Beats')", timeout=10)
        shot = tmp_path / "web-view.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("EDGE_WEB_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["EDGE_WEB_SCREENSHOT"])
        assert problems == [], problems
        assert page.is_hidden("#stale")

        port = daemon.port
        assert daemon.stop() == 0
        page.wait_for_selector("#stale:not([hidden])", timeout=5_000)
        assert "STALE" in page.inner_text("#stale")

        # started again on the same port: the page reconnects and the banner goes
        daemon = Daemon(tmp_path, sources, port=port)
        page.wait_for_selector("#stale", state="hidden", timeout=30_000)
        wait_until(page, BEATS_SHOWN, timeout=20)
    finally:
        page.close()
        daemon.stop()


def test_with_a_token_nothing_is_served_without_it_and_a_silent_source_is_flagged(
        chromium, data_dir, tmp_path):
    token = tmp_path / "web-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    # the demo trace's replay ends after about 5 s: its source falls silent, the daemon goes on
    sources = (replay(data_dir / "mitdb-ds1" / "208", "bed-7", speed=1.0)
               + replay(DEMO_TRACE, "bed-8", speed=60.0, loop=False))
    daemon = Daemon(tmp_path, sources, extra=f'token_file = "{token}"\n')
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    try:
        for path in ("", "api/status", "api/episodes", "api/live", "static/app.js"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(daemon.url + path, timeout=10)
            assert refused.value.code == 401, path
        req = urllib.request.Request(daemon.url + "api/status",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as ok:
            assert ok.status == 200

        response = page.goto(daemon.url)
        assert response is not None and response.status == 401
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-kind=ecg][data-beats]", timeout=20_000)
        cookies = page.context.cookies()
        assert [c["httpOnly"] for c in cookies] == [True]

        # the ended replay flagged, bed-7 (still streaming) not
        # (a trace replays the device id it recorded: demo-wearable)
        wait_until(page, "(t => t.includes('device demo-wearable') && !t.includes('bed-7'))"
                         "(document.getElementById('stale').textContent)", timeout=30)
        assert "silent" in page.inner_text("#stale")
        page.wait_for_selector(".card.silent[data-device='demo-wearable']", timeout=5_000)
        assert page.query_selector(".card.silent[data-device='bed-7']") is None
    finally:
        page.close()
        daemon.stop()
