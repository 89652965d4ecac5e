"""What a FHIR server nobody here wrote needs: plain JSON unless gzip is negotiated, a
patient link that resolves on a strict server, standard codes the server stores."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from edge.config import EdgeConfig, FhirConfig
from edge.store.outbox import Outbox
from edge.sync.crashtest import fast_sync
from edge.sync.engine import SyncEngine
from edge.sync.testserver import start_backend, start_test_backend
from edge.sync.transport import Uploader
from edge.types import Episode, Priority, StreamKey
from tests.sync_helpers import FHIR_BACKENDS, require_backend


def ep(i: int, kind: str = "atrial_fibrillation") -> Episode:
    return Episode(kind=kind, key=StreamKey("w1", "ecg"), onset=1.7e9 + 60 * i,
                   offset=1.7e9 + 60 * i + 20, onset_index=0, offset_index=10,
                   priority=Priority.WARNING, detector="d", detector_version="1")


def cfg_for(url: str, **fhir) -> EdgeConfig:
    cfg = fast_sync(EdgeConfig(), url)
    return replace(cfg, fhir=replace(FhirConfig(patient_identifier_value="p-7"), **fhir))


async def sync(outbox: Outbox, cfg: EdgeConfig):
    async with Uploader(cfg) as up:
        report = await SyncEngine(outbox, up, cfg).sync_once()
        return report, up


@pytest.fixture(params=FHIR_BACKENDS)
def refusing_gzip(request, tmp_path):
    """A server that answers 415 to a gzip body (Medplum's wrapper does by default)."""
    require_backend(request.param)
    kw = {"no_gzip": True} if request.param == "own" else {}
    with start_backend(request.param, tmp_path, **kw) as be:
        yield be


def test_gzip_is_off_by_default_and_a_415_falls_back_to_plain_json_losing_nothing(
        tmp_path, refusing_gzip, caplog):
    be = refusing_gzip
    with Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(ep(1))
        rep, up = asyncio.run(sync(ob, cfg_for(be.url)))  # default: plain JSON
        assert rep.delivered == 1 and up.gzip is False
        assert "refused_gzip" not in be.stats()["counters"]
        for i in (2, 3):
            ob.put(ep(i))
        cfg = cfg_for(be.url)
        cfg = replace(cfg, sync=replace(cfg.sync, gzip=True, batch_events=1))
        with caplog.at_level(logging.WARNING, logger="edge.sync.transport"):
            rep, up = asyncio.run(sync(ob, cfg))
        assert rep.delivered == 2 and ob.stats()["pending"] == 0
        assert up.gzip is False  # negotiated down once, for the rest of the connection
    lines = [r.getMessage() for r in caplog.records if "415" in r.getMessage()]
    assert len(lines) == 1 and "plain JSON" in lines[0]
    assert be.stats()["counters"]["refused_gzip"] == 1  # the second bundle went plain at once
    assert len([o for o in be.observations() if o["system"] == "urn:vitals-edge:event"]) == 3


def test_gzip_goes_compressed_when_the_server_accepts_it(tmp_path):
    with start_test_backend(tmp_path / "b.sqlite3") as be, Outbox(tmp_path / "o.sqlite3") as ob:
        for i in range(20):
            ob.put(ep(i))
        cfg = cfg_for(be.url)
        _, plain = asyncio.run(sync(ob, cfg))
        for i in range(20, 40):
            ob.put(ep(i))
        _, packed = asyncio.run(sync(ob, replace(cfg, sync=replace(cfg.sync, gzip=True))))
    assert packed.gzip is True and packed.bytes_sent * 4 < plain.bytes_sent


@pytest.fixture
def medplum(tmp_path):
    require_backend("medplum")
    with start_backend("medplum", tmp_path) as be:
        yield be


def test_on_a_strict_server_the_created_patient_link_resolves(tmp_path, medplum):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for i in range(3):
            ob.put(ep(i))
        assert asyncio.run(sync(ob, cfg_for(medplum.url)))[0].delivered == 3
        ob.put(ep(3, "desaturation"))
        asyncio.run(sync(ob, cfg_for(medplum.url)))  # the second bundle finds the Patient
    held = [o for o in medplum.observations() if o["system"] == "urn:vitals-edge:event"]
    subjects = {o["subject"] for o in held}
    assert len(held) == 4 and len(subjects) == 1
    assert next(iter(subjects)).startswith("Patient/")  # resolved, not a search or a urn
    assert medplum.stats()["resources"]["Patient"] == 1  # created once, then matched
    assert all("http://snomed.info/sct|49436004" in o["codes"] for o in held[:3])
    assert "http://snomed.info/sct|389087006" in held[3]["codes"]


def test_on_a_strict_server_an_existing_patient_must_be_there(tmp_path, medplum):
    existing = cfg_for(medplum.url, patient_link="existing")
    with Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(ep(1))
        rep = asyncio.run(sync(ob, existing))[0]
        # the whole transaction fails: the event is parked, not lost and not half-stored
        assert (rep.delivered, rep.parked) == (0, 1)
        assert ob.failed()[0].last_error.startswith("HTTP 412")
        assert "Observation" not in medplum.stats()["resources"]
        # once the Patient exists (here: created by a gateway with patient_link = create),
        # the same identifier resolves
        ob.put(ep(2))
        assert asyncio.run(sync(ob, cfg_for(medplum.url)))[0].delivered == 1
        ob.put(ep(3))
        assert asyncio.run(sync(ob, existing))[0].delivered == 1
    subjects = {o["subject"] for o in medplum.observations()}
    assert len(subjects) == 1 and next(iter(subjects)).startswith("Patient/")


def test_a_replay_of_mitdb_208_reaches_medplum_coded_and_linked_to_a_patient(
        tmp_path, data_dir, medplum):
    """The issue's measurement as a test: every episode with a SNOMED CT or MDC code, a
    resolved Patient, plain JSON (gzip off by default), nothing twice."""
    from click.testing import CliRunner

    from edge.cli.main import cli

    outbox, cfg = tmp_path / "o.sqlite3", tmp_path / "edge.toml"
    cfg.write_text('[fhir]\npatient_identifier_value = "p-208"\n')
    run = CliRunner().invoke
    r = run(cli, ["replay", str(data_dir / "mitdb" / "208"), "--outbox", str(outbox),
                  "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    with Outbox(outbox) as ob:
        ids = [e.episode.id for e in ob.events()]
    assert ids  # 208 has ventricular ectopy: there is something to deliver
    for _ in range(2):  # the second flush finds nothing new to store
        r = run(cli, ["outbox", "flush", "--outbox", str(outbox), "--url", medplum.url,
                      "--config", str(cfg)])
        assert r.exit_code == 0 and "; 0 pending, 0 refused" in r.stdout, r.output
    held = {o["identifier"]: o for o in medplum.observations()
            if o["system"] == "urn:vitals-edge:event"}
    assert sorted(held) == sorted(ids)
    for o in held.values():
        assert any(c.startswith(("http://snomed.info/sct|", "urn:iso:std:iso:11073:10101|"))
                   for c in o["codes"]), o
        assert o["subject"].startswith("Patient/"), o
    stats = medplum.stats()
    assert stats["duplicates"] == [] and stats["resources"]["Patient"] == 1
    assert "refused_gzip" not in stats["counters"]


@pytest.mark.parametrize("kind", FHIR_BACKENDS)
def test_a_transaction_with_one_invalid_entry_stores_nothing(tmp_path, kind):
    from edge.errors import BundleRejectedError
    from edge.sync.fhir import transaction_bundle

    require_backend(kind)
    with start_backend(kind, tmp_path) as be:
        cfg = cfg_for(be.url)
        bundle = transaction_bundle([(ep(1), 1), (ep(2), 1)], cfg.fhir).bundle
        del bundle["entry"][-1]["resource"]["status"]  # the last Observation is invalid

        async def send() -> None:
            async with Uploader(cfg) as up:
                await up.send(bundle)
        with pytest.raises(BundleRejectedError) as err:
            asyncio.run(send())
        assert err.value.status == 400
        assert be.stats()["resources"] == {}  # all or nothing: not even the Patient


def test_the_engine_learns_a_servers_transaction_size_limit_and_says_so_once(
        tmp_path, medplum, caplog):
    cfg = cfg_for(medplum.url)
    cfg = replace(cfg, sync=replace(cfg.sync, batch_events=50))
    with Outbox(tmp_path / "o.sqlite3") as ob:
        for i in range(30):
            ob.put(ep(i))

        async def run() -> tuple[int, int | None, int]:
            async with Uploader(cfg) as up:
                engine = SyncEngine(ob, up, cfg)
                first = await engine.sync_once(max_events=12)
                rest = await engine.sync_once()
                return first.delivered + rest.delivered, engine.batch_limit, rest.bundles
        with caplog.at_level(logging.WARNING, logger="edge.sync.engine"):
            delivered, limit, bundles = asyncio.run(run())
    assert delivered == 30 and limit is not None and limit + 3 <= 8  # + Patient, 2 Devices
    assert bundles == -(-18 // limit)  # the rest went at the learned size, no more refusals
    learned = [r for r in caplog.records if "per bundle from now on" in r.getMessage()]
    assert len(learned) == 1
    assert len(medplum.observations()) == 30
