"""The ``edge`` commands, run in-process as a user would run them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edge.cli.main import cli


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def test_demo_streams_the_shipped_recording_to_detected_and_stored_episodes(run):
    out = json.loads(run("demo", "--fast", "--json").output)
    assert out["signal_seconds"] == 300.0
    assert out["licence"] == "ODC-BY 1.0"
    ref = out["reference"]
    assert ref["beats"] == 509  # MIT-BIH 208, samples 422820-530819
    assert ref["qrs_se"] >= 0.97 and ref["qrs_ppv"] >= 0.99
    assert 95 <= out["heart_rate_bpm"]["mean"] <= 112
    assert out["outbox"]["total"] == len(out["episodes"])
    sync = out["sync"]  # delivered to a real FHIR test backend process, verified there
    assert sync["delivered"] == out["outbox"]["total"] and sync["pending"] == 0
    assert sync["duplicates"] == 0 and sync["missing"] == 0
    assert sync["checked"] == out["outbox"]["total"]
    assert out["pipeline"]["processor_errors"] == {}


def test_demo_results_do_not_depend_on_the_streaming_speed(run):
    fast = json.loads(run("demo", "--fast", "--json").output)
    paced = json.loads(run("demo", "--speed", "600", "--json").output)
    assert fast["beats"] == paced["beats"]
    assert fast["episodes_by_kind"] == paced["episodes_by_kind"]


def test_events_lists_what_the_demo_stored(run):
    run("demo", "--fast", "--json")
    rows = json.loads(run("events", "--outbox", "edge-demo/outbox.sqlite3", "--json").output)
    table = run("events", "--outbox", "edge-demo/outbox.sqlite3").output
    assert all(r["detector_version"] for r in rows)
    assert "kind" in table


def test_events_without_an_outbox_is_one_clear_error(run):
    result = run("events", "--outbox", "nope.sqlite3", ok=False)
    assert result.exit_code != 0
    assert "no outbox here" in result.output


def test_evaluate_qrs_reports_per_record_and_total(run, data_dir):
    rec = str(data_dir / "mitdb" / "100")
    out = json.loads(run("evaluate", "--task", "qrs", rec, "--json").output)
    assert out["records"][0]["record"] == "100"
    assert out["total"]["se"] >= 0.995 and out["total"]["ppv"] >= 0.995
    assert out["total"]["tp"] + out["total"]["fn"] == 2273  # reference beats in record 100


def test_evaluate_refuses_a_record_without_annotations(run, data_dir):
    rec = str(data_dir / "mitdb-signal-only" / "104")
    result = run("evaluate", "--task", "qrs", rec, ok=False)
    assert result.exit_code != 0 and "no 'atr' annotations" in result.output


def test_replay_a_csv_recording(run, data_dir):
    csv = str(data_dir / "nstdb-118e-csv" / "118e24.csv")
    out = json.loads(run("replay", csv, "--fs", "360", "--json").output)
    assert out["samples"] > 40000
    assert 130 <= out["beats"] <= 170  # 2 min at about 70 bpm


def test_replay_a_csv_without_its_rate_is_a_clear_error(run, data_dir):
    csv = str(data_dir / "nstdb-118e-csv" / "118e24.csv")
    result = run("replay", csv, ok=False)
    assert "needs its sample rate" in result.output


def test_record_then_replay_gives_the_same_detections(run, data_dir):
    csv = str(data_dir / "nstdb-118e-csv" / "118e24.csv")
    run("record", "t.vetrace", "--from", csv, "--fs", "360")
    direct = json.loads(run("replay", csv, "--fs", "360", "--json").output)
    replayed = json.loads(run("replay", "t.vetrace", "--json").output)
    assert replayed["beats"] == direct["beats"]
    assert replayed["samples"] == direct["samples"]


def test_config_example_checks_clean_and_a_bad_key_fails(run, tmp_path):
    (tmp_path / "ok.toml").write_text(run("config", "example").output)
    assert "ok" in run("config", "check", "ok.toml").output
    (tmp_path / "bad.toml").write_text("[rate_rules]\ntachy = 1\n")
    result = run("config", "check", "bad.toml", ok=False)
    assert "unknown key 'tachy'" in result.output


def test_bench_reports_the_documented_keys(run, data_dir):
    out = json.loads(run("bench", "--record", str(data_dir / "mitdb" / "100"),
                         "--repeats", "1", "--patients", "1,2", "--memory-seconds", "6",
                         "--json").output)
    for key in ("real_time_factor", "overhead_ratio", "latency_ms", "peak_rss_mb"):
        assert key in out
    assert out["real_time_factor"] > 1
    assert set(out["latency_ms"]) >= {"p50", "p99"}
    # the real daemon (a child process) on 1 and 2 replayed patients, ECG and PPG each
    one, two = out["daemon"]
    assert (one["patients"], two["patients"]) == (1, 2) and two["streams"] == 4
    for d in (one, two):
        assert d["exit_code"] == 0
        assert d["peak_rss_mb"] > 0 and d["cpu_percent_per_patient_at_1x"] > 0
        assert not {"pandas", "matplotlib", "tensorflow", "wfdb"} & set(
            d["native_libraries_loaded"])


def test_a_recorded_wfdb_record_keeps_its_reference_labels(run, data_dir):
    from edge.trace.format import Annotation, read_trace

    run("record", "r.vetrace", "--from", str(data_dir / "mitdb" / "100"), "--seconds", "60")
    _, items = read_trace("r.vetrace")
    anns = [i for i in items if isinstance(i, Annotation)]
    assert 70 <= len(anns) <= 80  # the labels of the recorded minute only
    assert all(a.index < 60 * 360 + 90 for a in anns) and "N" in {a.symbol for a in anns}


def test_evaluate_af_reports_episode_and_duration_figures(run, data_dir):
    out = json.loads(run("evaluate", "--task", "af", str(data_dir / "cpsc2021" / "data_84_1"),
                         "--json").output)
    assert out["total"]["se"] == 1.0 and out["total"]["ppv"] == 1.0
    assert out["total"]["duration_se"] >= 0.95


def test_evaluate_pvc_on_mitdb_208_with_a_plot(run, data_dir, tmp_path):
    out = json.loads(run("evaluate", "--task", "pvc", str(data_dir / "mitdb" / "208"),
                         "--plot", str(tmp_path / "plots"), "--json").output)
    assert out["total"]["se"] >= 0.95 and out["total"]["ppv"] >= 0.75
    png = tmp_path / "plots" / "208-pvc.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_ppg_hr_reports_mae_in_bpm(run, data_dir):
    mat = data_dir / "ieee-spc2015" / "Training_data" / "DATA_01_TYPE01.mat"
    out = json.loads(run("evaluate", "--task", "ppg-hr", str(mat), "--json").output)
    assert out["total"]["mae_bpm"] <= 5.0


def test_evaluate_false_alarms_on_clean_sinus_rhythm(run, data_dir):
    out = json.loads(run("evaluate", "--task", "false-alarms", str(data_dir / "mitdb" / "100"),
                         "--json").output)
    assert out["total"]["alarms_per_hour"] <= 1.0
