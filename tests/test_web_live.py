"""The web view's live tap and its server, in process: fan-out, slow clients, token, headers.

The server is the real aiohttp application on a real loopback socket; the
clients are httpx and raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from edge.config import EdgeConfig, WebConfig
from edge.errors import ConfigError
from edge.store.outbox import Outbox
from edge.types import Beat, Block, ChannelSpec, Episode, Priority, StreamKey
from edge.web.auth import read_token
from edge.web.live import LiveView

REPO = Path(__file__).resolve().parent.parent
KEY = StreamKey("bed-7", "ecg")
ECG = (ChannelSpec("MLII", "mV"),)


def block(first: int, n: int, fs: float = 360.0) -> Block:
    data = np.sin(np.arange(first, first + n) / 20.0).astype(np.float32).reshape(-1, 1)
    return Block(KEY, ECG, fs, first // max(n, 1), first, first / fs, time.monotonic(), data)


def episode(onset: float = 1000.0) -> Episode:
    return Episode("tachycardia", KEY, onset, onset + 12, 3600, 7920, Priority.WARNING,
                   "rate_rules", "1.0.0")


# -- the tap -------------------------------------------------------------------------------

def test_the_strip_keeps_the_last_seconds_and_the_beats_in_them():
    live = LiveView(WebConfig(strip_s=10.0))
    for first in range(0, 360 * 30, 90):  # 30 s in 0.25 s blocks
        live.on_block(block(first, 90))
    asyncio.run(live.handle(Beat(KEY, 360 * 5, 360.0, 5.0, "N")))  # older than the strip
    asyncio.run(live.handle(Beat(KEY, 360 * 25, 360.0, 25.0, "V")))
    live.on_block(block(360 * 30, 90))
    sub, first = live.subscribe()
    snap = json.loads(first)
    (strip,) = snap["streams"]
    assert strip["kind"] == "ecg" and strip["fs"] == 360.0 and strip["unit"] == "mV"
    assert 3600 <= len(strip["y"]) < 3600 + 90
    assert strip["i0"] + len(strip["y"]) == 360 * 30 + 90
    assert strip["beats"] == [[360 * 25, "V"]]


def test_a_tick_carries_only_what_arrived_since_the_last_one():
    live = LiveView(WebConfig())
    live.on_block(block(0, 90))
    sub, _ = live.subscribe()
    live.tick()
    live.on_block(block(90, 90))
    live.on_block(block(180, 90))
    asyncio.run(live.handle(Beat(KEY, 200, 360.0, 0.55, "N")))
    asyncio.run(live.handle(episode()))
    live.tick()
    sub.queue.get_nowait()
    msg = json.loads(sub.queue.get_nowait())
    part = msg["streams"][str(KEY)]
    assert part["parts"] == [{"i0": 90, "y": part["parts"][0]["y"]}]
    assert len(part["parts"][0]["y"]) == 180
    assert part["beats"] == [[200, "N"]]
    assert msg["episodes"] == 1


def test_a_client_that_stops_reading_is_dropped_and_the_others_go_on():
    live = LiveView(WebConfig(client_queue=5))
    stalled, _ = live.subscribe()
    reader, _ = live.subscribe()
    dropped: list[bool] = []
    stalled.on_drop = lambda: dropped.append(True)
    for i in range(20):
        live.on_block(block(i * 90, 90))
        live.tick()  # synchronous: publishing never waits for anyone
        while not reader.queue.empty():
            reader.queue.get_nowait()
    assert dropped == [True] and stalled.dropped and live.dropped == 1
    assert stalled not in live.subscribers and reader in live.subscribers


# -- settings and the token rule ------------------------------------------------------------

def test_the_web_view_is_off_by_default_and_loopback_needs_no_token():
    assert EdgeConfig().web.listen == ""
    assert WebConfig(listen="127.0.0.1:8080").host_port == ("127.0.0.1", 8080)
    assert WebConfig(listen="[::1]:8080").host_port == ("::1", 8080)


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "192.0.2.1:8080", "gateway.local:80",
                                    "[::]:8080"])
def test_listening_beyond_loopback_without_a_token_is_refused(listen):
    with pytest.raises(ConfigError, match="token_file"):
        WebConfig(listen=listen)
    assert WebConfig(listen=listen, token_file="/etc/edge/web-token").listen == listen


def test_a_malformed_listen_address_is_one_clear_error():
    with pytest.raises(ConfigError, match="HOST:PORT"):
        WebConfig(listen="8080")


def test_a_token_file_others_can_read_is_refused(tmp_path):
    p = tmp_path / "token"
    p.write_text("0123456789abcdef0123456789abcdef\n")
    os.chmod(p, 0o644)
    with pytest.raises(ConfigError, match="0644"):
        read_token(p)
    os.chmod(p, 0o600)
    assert read_token(p) == "0123456789abcdef0123456789abcdef"
    p.write_text("short")
    with pytest.raises(ConfigError, match="at least"):
        read_token(p)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True,
                          text=True, timeout=60)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in process (as a user runs it; output and exit code)."""
    from click.testing import CliRunner

    from edge.cli.main import cli

    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def test_config_check_applies_the_token_rule(tmp_path):
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123456789abcdef")
    os.chmod(token, 0o640)
    cfg = tmp_path / "edge.toml"
    cfg.write_text('[web]\nlisten = "0.0.0.0:8080"\n')
    r = _cli("config", "check", str(cfg))
    assert r.returncode != 0 and "token_file" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text(f'[web]\nlisten = "0.0.0.0:8080"\ntoken_file = "{token}"\n')
    r = _cli("config", "check", str(cfg))
    assert r.returncode != 0 and "chmod 600" in r.stderr and "Traceback" not in r.stderr
    os.chmod(token, 0o600)
    r = _cli("config", "check", str(cfg))
    assert r.returncode == 0, r.stderr
    example = _cli("config", "example").stdout
    assert '[web]\n' in example and 'listen = ""' in example and "SSH tunnel" in example


def test_the_cli_never_loads_aiohttp_unless_the_web_view_runs():
    code = ("import sys; from click.testing import CliRunner; from edge.cli.main import cli; "
            "CliRunner().invoke(cli, ['--help']); CliRunner().invoke(cli, ['events', '--help']);"
            " print('aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- the server on a real socket -------------------------------------------------------------

TOKEN = "0123456789abcdef0123456789abcdef"


async def _serve(tmp_path, token: str | None = None, **web):
    from edge.web.server import WebServer

    config = EdgeConfig(web=WebConfig(listen="127.0.0.1:0", **web))
    live = LiveView(config.web, status=lambda: {"sources": [], "outbox": {}})
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    return WebServer(config, live, outbox, None, token), live, outbox


def test_episodes_are_listed_newest_first_with_ids(tmp_path):
    async def go():
        server, live, outbox = await _serve(tmp_path)
        older, newer = episode(1000.0), episode(2000.0)
        outbox.put(older)
        outbox.put(newer)
        async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            rows = (await c.get("/api/episodes")).json()
            one = await c.get(f"/api/episodes/{older.id}")
            missing = await c.get("/api/episodes/nope")
            bad = await c.get("/api/episodes?limit=x")
            post = await c.post("/api/episodes")
        outbox.close()
        return rows, one, missing, bad, post

    rows, one, missing, bad, post = asyncio.run(go())
    assert [r["id"] for r in rows][:2] == [rows[0]["id"], rows[1]["id"]]
    assert rows[0]["onset"] == 2000.0 and rows[1]["onset"] == 1000.0
    assert rows[0]["kind"] == "tachycardia" and rows[0]["has_evidence"] is False
    assert one.json()["onset"] == 1000.0
    assert missing.status_code == 404 and bad.status_code == 400
    assert post.status_code == 405  # nothing changes state


def test_every_response_has_a_strict_content_security_policy(tmp_path):
    async def go():
        server, live, outbox = await _serve(tmp_path)
        async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            out = [await c.get(p) for p in ("/", "/static/app.js", "/api/status",
                                            "/static/uPlot.iife.min.js")]
        outbox.close()
        return out

    for r in asyncio.run(go()):
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"


def test_with_a_token_every_request_needs_it(tmp_path):
    async def go():
        server, live, outbox = await _serve(tmp_path, token=TOKEN)
        async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            res = {p: (await c.get(p)).status_code
                   for p in ("/", "/api/status", "/api/episodes", "/api/live",
                             "/static/app.js")}
            wrong = (await c.get("/api/status",
                                 headers={"Authorization": "Bearer " + "x" * 32})).status_code
            bearer = (await c.get("/api/status",
                                  headers={"Authorization": f"Bearer {TOKEN}"})).status_code
            bad_login = await c.post("/login", data={"token": "nope"})
            login = await c.post("/login", data={"token": TOKEN})
            cookie_header = login.headers.get("set-cookie", "")
            with_cookie = (await c.get("/api/status")).status_code  # httpx keeps the cookie
        outbox.close()
        return res, wrong, bearer, bad_login.status_code, login.status_code, cookie_header, \
            with_cookie

    res, wrong, bearer, bad_login, login, cookie, with_cookie = asyncio.run(go())
    assert set(res.values()) == {401}, res
    assert wrong == 401 and bearer == 200
    assert bad_login == 401 and login == 303
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert with_cookie == 200


def test_a_stalled_browser_is_dropped_and_a_reading_one_is_served(tmp_path):
    """A client that stops reading its socket is disconnected; a reading one keeps getting data.

    Publishing is a plain function call (``LiveView.tick``): it cannot wait for a client.
    """
    async def go():
        server, live, outbox = await _serve(tmp_path, client_queue=4, push_hz=20.0)
        received = 0

        async def read(c: httpx.AsyncClient) -> None:
            nonlocal received
            async with c.stream("GET", "/api/live") as resp:
                async for chunk in resp.aiter_bytes():
                    received += len(chunk)

        async with server:
            stalled = socket.socket()
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", server.port))
            stalled.sendall(b"GET /api/live HTTP/1.1\r\nHost: x\r\n\r\n")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                         timeout=30) as c:
                reader = asyncio.create_task(read(c))
                first = 0
                for _ in range(600):  # bounded: at most 30 s
                    # 50,000 samples per tick: megabytes a second to every client
                    live.on_block(block(first, 50_000, fs=20_000.0))
                    first += 50_000
                    await asyncio.sleep(0.05)
                    if live.dropped:
                        break
                await asyncio.sleep(0.5)
                still = len(live.subscribers)
                before = received
                live.on_block(block(first, 1000, fs=20_000.0))
                await asyncio.sleep(0.5)
                after = received
                reader.cancel()
            stalled.close()
        outbox.close()
        return live.dropped, still, before, after

    dropped, still, before, after = asyncio.run(go())
    assert dropped == 1
    assert still == 1 and after > before > 0


def test_the_daemon_refuses_to_start_with_a_token_others_can_read(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o644)
    trace = REPO / "edge" / "demo_data" / "mitdb208-5min.vetrace"
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "o.sqlite3"}"\n[ops]\nmetrics_port = -1\n'
                   f'[web]\nlisten = "0.0.0.0:0"\ntoken_file = "{token}"\n'
                   f'[[sources]]\ntype = "replay"\npath = "{trace}"\n')
    r = _cli("run", "--config", str(cfg))
    assert r.returncode != 0
    assert "chmod 600" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    cfg.write_text(cfg.read_text().replace(f'token_file = "{token}"\n', ""))
    r = _cli("run", "--config", str(cfg))
    assert r.returncode != 0 and "token_file" in r.stderr and "Traceback" not in r.stderr


def test_with_tls_the_view_is_served_over_https_and_the_cookie_is_secure(tmp_path):
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "web.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "web.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    trust = ssl.create_default_context(cafile=str(tmp_path / "web.crt"))  # verification on

    async def go():
        server, live, outbox = await _serve(tmp_path, token=TOKEN,
                                            tls_cert=str(tmp_path / "web.crt"),
                                            tls_key=str(tmp_path / "web.key"))
        async with server, httpx.AsyncClient(base_url=f"https://127.0.0.1:{server.port}",
                                             verify=trust) as c:
            status = (await c.get("/api/status",
                                  headers={"Authorization": f"Bearer {TOKEN}"})).status_code
            login = await c.post("/login", data={"token": TOKEN})
        outbox.close()
        return status, login.headers.get("set-cookie", "")

    status, cookie = asyncio.run(go())
    assert status == 200
    assert "Secure" in cookie and "HttpOnly" in cookie
    with pytest.raises(ConfigError, match="together"):
        WebConfig(listen="127.0.0.1:0", tls_cert=str(tmp_path / "web.crt"))


def test_a_silent_waveform_is_flagged_but_a_slow_numeric_source_is_not(tmp_path):
    from edge.pipeline import Pipeline
    from edge.types import VitalKind, VitalSample
    from edge.web.status import build_status

    config = EdgeConfig(web=WebConfig(stale_s=0.05))
    live = LiveView(config.web)
    live.on_block(block(0, 90))
    cuff = StreamKey("cuff-3", "vitals")
    asyncio.run(live.handle(VitalSample(cuff, VitalKind.SYSTOLIC_BP, 128.0, "mm[Hg]", 0.0,
                                        time.monotonic())))
    fresh = {d["device"]: d for d in build_status(config, [], Pipeline(lambda ctx: []), None,
                                                  live)["sources"]}
    assert not fresh["bed-7"]["silent"] and not fresh["cuff-3"]["silent"]
    assert fresh["cuff-3"]["numerics"]["systolic_bp"]["value"] == 128.0
    time.sleep(0.2)  # longer than stale_s: the ECG has stopped, the cuff reports rarely
    later = {d["device"]: d for d in build_status(config, [], Pipeline(lambda ctx: []), None,
                                                  live)["sources"]}
    assert later["bed-7"]["silent"] and later["bed-7"]["link"] == "silent"
    assert not later["cuff-3"]["silent"] and later["cuff-3"]["waveform_age_s"] is None


def test_a_ppg_stream_gets_its_own_strip():
    live = LiveView(WebConfig())
    ppg = StreamKey("wrist-2", "ppg")
    data = np.zeros((64, 1), dtype=np.float32)
    live.on_block(Block(ppg, (ChannelSpec("PPG", "1"),), 64.0, 0, 0, 0.0, 0.0, data))
    live.on_block(block(0, 90))
    _, first = live.subscribe()
    kinds = {s["id"]: s["kind"] for s in json.loads(first)["streams"]}
    assert kinds == {"wrist-2/ppg": "ppg", "bed-7/ecg": "ecg"}


def test_a_busy_web_port_is_one_line_and_monitoring_goes_on(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        trace = REPO / "edge" / "demo_data" / "mitdb208-5min.vetrace"
        cfg = tmp_path / "edge.toml"
        cfg.write_text(f'[store]\npath = "{tmp_path / "o.sqlite3"}"\n[ops]\nmetrics_port = -1\n'
                       f'[web]\nlisten = "127.0.0.1:{port}"\n'
                       f'[[sources]]\ntype = "replay"\npath = "{trace}"\nspeed = 100.0\n')
        r = _run_cli("run", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "web view off: cannot listen" in r.stderr and "Traceback" not in r.stderr
    assert "stopped after" in r.stdout
