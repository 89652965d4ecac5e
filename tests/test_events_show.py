"""``edge events show ID``: one stored episode in full, and its evidence strip as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli.main import cli

TRACE = Path(__file__).resolve().parent.parent / "edge" / "demo_data" / "mitdb208-5min.vetrace"


def invoke(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def outbox(tmp_path_factory) -> str:
    """The shipped 5 minutes of MIT-BIH 208 replayed through the pipeline into an outbox."""
    path = str(tmp_path_factory.mktemp("show") / "outbox.sqlite3")
    invoke("replay", str(TRACE), "--outbox", path)
    return path


def test_show_prints_every_field_of_one_episode(outbox):
    rows = json.loads(invoke("events", "--outbox", outbox, "--json").output)
    ep = next(r for r in rows if r["kind"] == "frequent_pvcs")
    text = invoke("events", "show", ep["id"], "--outbox", outbox).output
    assert text.startswith(f"episode {ep['id']}")
    for expected in ("kind:              frequent_pvcs", "detector:          ectopy",
                     "demo-wearable / ecg", "evidence:          15.0 s at 360 Hz (mV)",
                     "pvc_burden_pct:", "synced:            no, waiting"):
        assert expected in text
    full = json.loads(invoke("events", "show", ep["id"], "--outbox", outbox, "--json").output)
    assert full["id"] == ep["id"] and full["details"] == ep["details"]
    assert full["evidence"]["samples"] == 5400
    short = invoke("events", "show", ep["id"][:8], "--outbox", outbox).output
    assert short == text  # an unambiguous id prefix is enough


def test_show_png_writes_the_evidence_strip_with_the_beats_found_in_it(outbox, tmp_path):
    rows = json.loads(invoke("events", "--outbox", outbox, "--json").output)
    ep = next(r for r in rows if r["kind"] == "frequent_pvcs")
    png = tmp_path / "strip.png"
    out = json.loads(invoke("events", "show", ep["id"], "--outbox", outbox, "--png", str(png),
                            "--json").output)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # 15 s of MIT-BIH 208 at about 100 bpm, with its PVCs
    assert 18 <= out["evidence"]["beats"] <= 30
    assert out["evidence"]["beats_by_class"].get("V", 0) >= 3


def test_an_unknown_id_is_one_clear_error(outbox):
    result = invoke("events", "show", "no-such-id", "--outbox", outbox, ok=False)
    assert result.exit_code != 0
    assert "no episode with id 'no-such-id'" in result.output
    missing = invoke("events", "show", "x", "--outbox", "nope.sqlite3", ok=False)
    assert missing.exit_code != 0 and "no outbox here" in missing.output
