"""Sync against real FHIR servers on loopback: exactly once, urgent first, faults, auth.

The delivery tests run against both servers in ``FHIR_BACKENDS``: this project's
fault-injecting test server and Medplum's FHIR router (tests/fhir_medplum), which
validates every resource and resolves conditional references strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.cli.outbox import outbox as outbox_cli
from edge.config import AuthConfig, EdgeConfig, SyncConfig, TlsConfig
from edge.errors import AuthError, BundleRejectedError, TransientSyncError
from edge.store.outbox import Outbox
from edge.sync.crashtest import fast_sync
from edge.sync.deliver import deliver_all
from edge.sync.engine import Backoff, CircuitBreaker, SyncEngine
from edge.sync.testserver import start_backend, start_test_backend
from edge.sync.transport import Uploader, retry_after_seconds
from edge.types import Episode, Priority, StreamKey
from tests.sync_helpers import FHIR_BACKENDS, require_backend

EVENT_SYSTEM = "urn:vitals-edge:event"


def ep(i: int, priority=Priority.WARNING, **kw) -> Episode:
    base = dict(kind="tachycardia", key=StreamKey("w1", "ecg"), onset=1.7e9 + 60 * i,
                offset=1.7e9 + 60 * i + 20, onset_index=0, offset_index=10,
                priority=priority, detector="rate_rules", detector_version="1.0.0")
    return Episode(**{**base, **kw})


@pytest.fixture(scope="module", params=FHIR_BACKENDS)
def backend(request, tmp_path_factory):
    require_backend(request.param)
    with start_backend(request.param, tmp_path_factory.mktemp("be")) as be:
        yield be


@pytest.fixture
def server(backend):
    backend.clear_faults()
    yield backend
    backend.clear_faults()


def on_server(backend, ids) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {i: [] for i in ids}
    for o in backend.observations():
        if o["system"] == EVENT_SYSTEM and o["identifier"] in out:
            out[o["identifier"]].append(o)
    return out


async def sync(outbox: Outbox, cfg: EdgeConfig, **kw):
    async with Uploader(cfg) as up:
        return await SyncEngine(outbox, up, cfg, **kw).sync_once()


def test_a_retried_upload_never_duplicates(tmp_path, server):
    cfg = fast_sync(EdgeConfig(), server.url)
    events = [ep(i) for i in range(5)]
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for e in events:
            ob.put(e)
        server.faults({"drop": "after"})  # the server commits, the answer is lost
        with pytest.raises(TransientSyncError):
            asyncio.run(sync(ob, cfg))
        assert ob.stats()["pending"] == 5  # not marked: we never heard back
        assert asyncio.run(sync(ob, cfg)).delivered == 5  # the resend is absorbed
    held = on_server(server, [e.id for e in events])
    assert all(len(v) == 1 for v in held.values()), held


def test_an_updated_episode_updates_the_same_resource(tmp_path, server):
    cfg = fast_sync(EdgeConfig(), server.url)
    e = ep(1, Priority.URGENT, kind="asystole", status="ongoing")
    with Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(e)
        asyncio.run(sync(ob, cfg))
        assert ob.put(replace(e, status="ended", offset=e.offset + 30)) == 2
        asyncio.run(sync(ob, cfg))
        asyncio.run(sync(ob, cfg))  # nothing left: no third write
    [held] = on_server(server, [e.id])[e.id]
    assert held["revision"] == 2 and held["status"] == "final" and held["version"] == 2


def test_after_an_outage_everything_arrives_urgent_first(tmp_path, server):
    cfg = fast_sync(EdgeConfig(), server.url)
    cfg = replace(cfg, sync=replace(cfg.sync, batch_events=10))
    prios = [Priority.INFO, Priority.WARNING, Priority.URGENT] * 10
    events = [ep(i, p) for i, p in enumerate(prios)]
    server.faults(down=True)
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for e in events:
            ob.put(e)
        with pytest.raises(TransientSyncError):
            asyncio.run(sync(ob, cfg))
        assert ob.stats()["pending_by_priority"] == {"info": 10, "warning": 10, "urgent": 10}
        server.clear_faults()
        assert asyncio.run(sync(ob, cfg)).delivered == 30
    held = on_server(server, [e.id for e in events])
    order = sorted((v[0]["seq"], v[0]["priority"]) for v in held.values())
    assert [p for _, p in order] == ["urgent"] * 10 + ["warning"] * 10 + ["info"] * 10


def test_the_engine_honours_retry_after_and_recovers_from_server_errors(tmp_path, server):
    cfg = fast_sync(EdgeConfig(), server.url)
    cfg = replace(cfg, sync=replace(cfg.sync, max_retry_after_s=5.0))
    server.faults({"status": 429, "retry_after": 1}, {"status": 500}, {"delay_s": 0.3})
    with Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(ep(1))

        async def run_until_delivered() -> float:
            async with Uploader(cfg) as up:
                engine = SyncEngine(ob, up, cfg)
                t0 = time.monotonic()
                task = asyncio.create_task(engine.run())
                while ob.stats()["pending"]:
                    await asyncio.sleep(0.02)
                    assert time.monotonic() - t0 < 15
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # stops cleanly on cancellation
                st = engine.status()
                assert st.errors["retry_after"] == 1 and st.errors["transient"] == 1
                assert st.queue_depth == 0 and st.last_success is not None
                return time.monotonic() - t0
        assert asyncio.run(run_until_delivered()) >= 1.0


def test_backoff_is_exponential_with_jitter_and_capped():
    b = Backoff(SyncConfig(backoff_initial_s=1, backoff_max_s=30, backoff_jitter=1.0),
                random.Random(0))
    delays = [b.next_delay() for _ in range(8)]
    caps = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    assert b.next_delay(retry_after=7) == 7
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60


def test_the_circuit_breaker_opens_after_failures_and_closes_after_a_good_probe():
    br = CircuitBreaker(failures=3, reset_s=10)
    for t in range(3):
        assert br.allow(t)
        br.record_failure(t)
    assert br.state == "open" and not br.allow(5)
    assert br.allow(13) and br.state == "half-open"
    br.record_failure(13)
    assert br.state == "open" and not br.allow(14)
    assert br.allow(23)
    br.record_success()
    assert br.state == "closed"


def test_a_refused_event_is_isolated_and_parked_while_the_rest_is_delivered(tmp_path, server):
    cfg = fast_sync(EdgeConfig(), server.url)
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for i in range(4):
            ob.put(ep(i))
        # the first two bundles (all 4, then the first half) are refused: bisection
        # narrows down to single events; the third refusal parks one event
        server.faults({"status": 422, "times": 3})
        rep = asyncio.run(sync(ob, cfg))
        assert rep.delivered == 3 and rep.parked == 1
        assert ob.stats()["failed"] == 1
        assert ob.failed()[0].last_error.startswith("HTTP 422")


def test_an_invalid_bundle_is_refused_by_the_test_server(server):
    async def send():
        async with Uploader(fast_sync(EdgeConfig(), server.url)) as up:
            await up.send({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Observation", "code": {"text": "x"}},
                 "request": {"method": "POST", "url": "Observation"}}]})  # no status
    with pytest.raises(BundleRejectedError) as err:
        asyncio.run(send())
    assert err.value.status == 400


def test_deliver_all_reports_each_event_once_on_the_backend(tmp_path, server):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for i in range(7):
            ob.put(ep(i))
    rep = asyncio.run(deliver_all(tmp_path / "o.sqlite3", server.url, EdgeConfig()))
    assert (rep.delivered, rep.pending, rep.checked, rep.missing, rep.duplicates) == (
        7, 0, 7, 0, 0)


def test_outbox_commands_show_status_list_export_and_flush(tmp_path, server):
    path = str(tmp_path / "o.sqlite3")
    with Outbox(path) as ob:
        ob.put(ep(1, Priority.URGENT))
        ob.put(ep(2, Priority.INFO))
    run = CliRunner().invoke
    r = run(outbox_cli, ["status", "--outbox", path])
    assert r.exit_code == 0 and "pending        2" in r.output
    r = run(outbox_cli, ["list", "--outbox", path, "--pending", "--json"])
    assert [x["priority"] for x in __import__("json").loads(r.output)] == ["urgent", "info"]
    r = run(outbox_cli, ["export", "--outbox", path, "--format", "fhir-ndjson"])
    assert r.exit_code == 0 and len(r.output.splitlines()) == 2
    r = run(outbox_cli, ["flush", "--outbox", path, "--url", server.url])
    assert r.exit_code == 0 and "delivered 2" in r.output
    r = run(outbox_cli, ["flush", "--outbox", path])
    assert r.exit_code == 1 and "no backend" in r.output
    r = run(outbox_cli, ["status", "--outbox", str(tmp_path / "nope.sqlite3")])
    assert r.exit_code == 1 and "no outbox here" in r.output


# -- authentication and transport security ---------------------------------------------


def test_a_bearer_token_is_required_and_read_from_a_file(tmp_path):
    (tmp_path / "token").write_text("s3cret-token\n")
    (tmp_path / "wrong").write_text("nope\n")
    with start_test_backend(tmp_path / "b.sqlite3", auth="bearer",
                            bearer_token_file=str(tmp_path / "token")) as be, \
            Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(ep(1))
        base = fast_sync(EdgeConfig(), be.url)
        bad = replace(base, auth=AuthConfig(mode="bearer", token_file=str(tmp_path / "wrong")))
        with pytest.raises(AuthError) as err:
            asyncio.run(sync(ob, bad))
        assert "nope" not in str(err.value)
        good = replace(base, auth=AuthConfig(mode="bearer", token_file=str(tmp_path / "token")))
        assert asyncio.run(sync(ob, good)).delivered == 1


def _ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def test_smart_backend_services_renews_its_token_before_expiry_and_after_a_401(tmp_path):
    key = _ec_key(tmp_path / "client.pem")
    (tmp_path / "client.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with start_test_backend(tmp_path / "b.sqlite3", auth="smart", client_id="gw-1",
                            client_public_key=str(tmp_path / "client.pub"), token_ttl=3) as be:
        auth = AuthConfig(mode="smart", client_id="gw-1", algorithm="ES384", key_id="k1",
                          private_key_file=str(tmp_path / "client.pem"), refresh_before_s=2)
        cfg = replace(fast_sync(EdgeConfig(), be.url), auth=auth)

        async def scenario() -> int:
            with Outbox(tmp_path / "o.sqlite3") as ob:
                async with Uploader(cfg) as up:
                    engine = SyncEngine(ob, up, cfg)
                    ob.put(ep(1))
                    await engine.sync_once()  # discovery + first token
                    await asyncio.sleep(1.2)  # inside refresh_before_s of expiry
                    ob.put(ep(2))
                    await engine.sync_once()  # renewed before it expired
                    be.faults(expire_tokens=True)  # revoked: the server answers 401
                    ob.put(ep(3))
                    await engine.sync_once()  # renewed after the 401, request retried
                    assert ob.stats()["pending"] == 0
                    return up._auth.tokens_fetched  # type: ignore[union-attr]
        assert asyncio.run(scenario()) == 3
        assert be.stats()["counters"]["tokens_issued"] == 3


def _cert(subject: str, key, issuer_key, issuer_name, *, ca: bool, san_ip: str | None = None):
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def test_mutual_tls_with_verification_on_by_default(tmp_path):
    def write(name, cert, key):
        (tmp_path / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            (tmp_path / f"{name}.key").write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, ca_key, None, ca=True)
    srv_key, cli_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    write("ca", ca, None)
    write("server", _cert("127.0.0.1", srv_key, ca_key, ca.subject, ca=False,
                          san_ip="127.0.0.1"), srv_key)
    write("client", _cert("gateway", cli_key, ca_key, ca.subject, ca=False), cli_key)
    import ssl
    admin = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    admin.load_cert_chain(str(tmp_path / "client.crt"), str(tmp_path / "client.key"))
    with start_test_backend(tmp_path / "b.sqlite3", tls_cert=str(tmp_path / "server.crt"),
                            tls_key=str(tmp_path / "server.key"),
                            client_ca=str(tmp_path / "ca.crt"), admin_verify=admin) as be:
        assert be.url.startswith("https://127.0.0.1:")
        base = fast_sync(EdgeConfig(), be.url)
        with Outbox(tmp_path / "o.sqlite3") as ob:
            ob.put(ep(1))
            # default: verification on, system CAs only -> our test CA is not trusted
            with pytest.raises(TransientSyncError):
                asyncio.run(sync(ob, base))
            no_cert = replace(base, tls=TlsConfig(ca_bundle=str(tmp_path / "ca.crt")))
            with pytest.raises(TransientSyncError):  # the server requires a client cert
                asyncio.run(sync(ob, no_cert))
            mtls = replace(base, tls=TlsConfig(ca_bundle=str(tmp_path / "ca.crt"),
                                               client_cert=str(tmp_path / "client.crt"),
                                               client_key=str(tmp_path / "client.key")))
            assert asyncio.run(sync(ob, mtls)).delivered == 1
        assert be.stats()["resources"]["Observation"] == 1
