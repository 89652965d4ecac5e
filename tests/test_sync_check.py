"""`edge sync check URL` tells in plain words what a FHIR server does with the gateway's bundles."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge.cli.main import cli
from edge.sync.testserver import start_backend, start_test_backend
from tests.sync_helpers import FHIR_BACKENDS, require_backend


@pytest.mark.parametrize("kind", FHIR_BACKENDS)
def test_sync_check_reports_acceptance_conditional_create_and_the_patient_link(tmp_path, kind):
    require_backend(kind)
    with start_backend(kind, tmp_path) as be:
        r = CliRunner().invoke(cli, ["sync", "check", be.url])
        assert r.exit_code == 0, r.output
        output = r.stdout
        lines = dict(line.split(None, 1) if not line.startswith(("conditional", "patient",
                                                                  "rejected", "gzip",
                                                                  "configured"))
                     else (" ".join(line.split()[:2]), " ".join(line.split()[2:]))
                     for line in output.splitlines() if line.strip())
        assert lines["accepted"].startswith("yes")
        assert lines["conditional create"].startswith("yes")
        assert lines["patient link"].startswith("resolved: Observation.subject -> Patient/")
        assert lines["rejected codes"].startswith("none")
        stats = be.stats()
        # no patient data: the only Patient the server saw holds the random test identifier
        assert stats["resources"].get("Patient", 0) <= 1
        assert "p-" not in json.dumps(be.observations())
    if kind == "medplum":
        assert "refused (HTTP 415)" in lines["gzip requests"]
        assert "limits transaction size" in lines["accepted"]  # 8 conditional entries at most
        assert "removed the" in output  # DELETE allowed: nothing left behind


def test_sync_check_exits_1_and_says_why_when_the_configured_patient_is_missing(tmp_path):
    """patient_link = existing on a strict server that holds no such Patient."""
    require_backend("medplum")
    cfg = tmp_path / "edge.toml"
    cfg.write_text('[fhir]\npatient_link = "existing"\npatient_identifier_value = "p-404"\n')
    with start_backend("medplum", tmp_path) as be:
        r = CliRunner().invoke(cli, ["sync", "check", be.url, "--config", str(cfg), "--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 1 and out["ok"] is False
    assert out["accepted"] and out["patient_resolved"]  # the test bundle itself went through
    assert "holds no Patient" in out["configured_patient"]


def test_sync_check_fails_with_one_line_when_the_server_is_unreachable(tmp_path):
    with start_test_backend(tmp_path / "b.sqlite3") as be:
        url = be.url
    r = CliRunner().invoke(cli, ["sync", "check", url])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "unreachable" in r.output
    r = CliRunner().invoke(cli, ["sync", "check"])
    assert r.exit_code == 1 and "no backend" in r.output
