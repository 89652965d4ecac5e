"""Model processors on real records: AF episodes, V beats, the `edge model` commands."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli.model import model as model_cli
from edge.config import EdgeConfig
from edge.detect.af import RULES_VERSION
from edge.detect.models import AF_EPISODE, ModelSet
from edge.evaluate.af import evaluate_af, reference_af_intervals, replay_with_models
from edge.evaluate.pvc import evaluate_pvc
from edge.trace.recordings import load_wfdb

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models() -> ModelSet:
    return ModelSet.from_config(EdgeConfig())


def test_af_episode_on_persistent_af_record(data_dir, models):
    # CPSC 2021 subject 84 is in the AF model's training set: this checks the
    # wiring (episode fields, timing), not generalisation (see the next test).
    rec = load_wfdb(data_dir / "cpsc2021" / "data_84_1")
    _, episodes = asyncio.run(replay_with_models(rec, EdgeConfig(), models))
    af = [e for e in episodes if e.kind == AF_EPISODE]
    assert len(af) == 1
    ep = af[0]
    assert ep.detector == "af_rr"
    assert ep.detector_version == f"{models.af.model.version}+rules{RULES_VERSION}"
    assert ep.status == "ended" and 0.5 <= ep.confidence <= 1.0
    ref = reference_af_intervals(rec)
    assert (ep.offset_index - ep.onset_index) / rec.fs > 0.9 * (ref[0][1] - ref[0][0]) / rec.fs


@pytest.mark.xfail(strict=True, reason=(
    "beat_nsv 2.0.0 (merged after af_rr 2.0.0 was trained on beat_nsv 1.0.0 labels) labels "
    "V 27 of the 242 beats of CPSC 101_8 (AF); the AF step leaves out RR next to V beats and "
    "the long episode is missed; af_rr must be retrained on 2.0.0 labels "
    "(tools/af_data.py, tools/train_af.py; docs/detection-changes.md 2026-12-04)"))
def test_paroxysmal_af_long_episode_and_short_burst(data_dir, models):
    # CPSC 2021 101_8: one reference AF episode over 30 s and one under. The shipped
    # model was trained on every patient (held-out figures: the cross-validation in
    # the model card); this checks the episode rules end to end on real beats.
    d = data_dir / "cpsc2021"
    res = evaluate_af([str(d / "data_101_8"), str(d / "data_21_7")], EdgeConfig(), models=models)
    t = res["total"]
    assert (t["ref_episodes"], t["ref_episodes_min_duration"], t["ref_short"]) == (2, 1, 1)
    # the long episode: an AF episode, onset and offset within 10 s of the reference
    assert t["se_min_duration"] == 1.0 and t["ppv"] == 1.0
    assert t["onset_within_10s"] == 1.0 and t["offset_within_10s"] == 1.0
    # the short one: not dropped, reported as the lower-priority af_burst finding
    assert t["ref_short_found"] == 1 and t["bursts"] == t["bursts_true"] >= 1
    no_af = res["records"][1]
    assert no_af["no_reference_af"] and no_af["det_episodes"] == 0  # subject 21: no AF


def test_no_af_episode_without_af(data_dir, models):
    res = evaluate_af([str(data_dir / "mitdb" / "100")], EdgeConfig(), models=models)
    assert res["total"]["det_episodes"] == 0


def test_pvcs_labelled_on_mitdb_208(data_dir, models):
    # 208 is a DS1 record, in the beat model's training set: this checks the wiring;
    # the cross-validated figures in the model card are the generalisation estimate.
    res = evaluate_pvc([str(data_dir / "mitdb" / "208")], EdgeConfig(), models=models)
    t = res["total"]
    assert t["se"] >= 0.95 and t["ppv"] >= 0.75  # measured 0.99 / 0.80 (F beats count as FP)


def test_record_100_has_almost_no_false_pvcs(data_dir, models):
    # 100 is a DS2 record (test only, never trained or tuned on): 1 reference V beat
    res = evaluate_pvc([str(data_dir / "mitdb" / "100")], EdgeConfig(), models=models)
    assert res["total"]["fp"] <= 5
    labels = res["records"][0]["labels"]
    assert labels.get("N", 0) > 2000


def _v_count(rec, config, models) -> int:
    beats, _ = asyncio.run(replay_with_models(rec, config, models))
    return sum(b.label == "V" for b in beats)


#: V beats of MIT-BIH 202 in the database's published table (no annotation file here).
PUBLISHED_V_202 = 19


def test_v_labels_on_beats_like_the_patients_normal_ones_are_overruled(data_dir, models):
    # MIT-BIH 202 (atrial flutter and AF) is a DS2 record: replayed, never trained on.
    # The check only ever turns V labels into N, and with it the V count stays near the
    # published one (bounds relative to the published count, not to a count measured
    # on one machine).
    rec = load_wfdb(data_dir / "mitdb-signal-only" / "202")
    cfg = EdgeConfig()
    off = replace(cfg, beat_classifier=replace(cfg.beat_classifier, normal_match_corr=1.1))
    without_check = _v_count(rec, off, models)
    with_check = _v_count(rec, cfg, models)
    assert with_check <= without_check
    assert with_check < 2 * PUBLISHED_V_202


def test_the_normal_beat_check_keeps_every_reference_pvc_on_mitdb_208(data_dir, models):
    cfg = EdgeConfig()
    off = replace(cfg, beat_classifier=replace(cfg.beat_classifier, normal_match_corr=1.1))
    path = [str(data_dir / "mitdb" / "208")]
    with_check = evaluate_pvc(path, cfg, models=models)["total"]
    without_check = evaluate_pvc(path, off, models=models)["total"]
    assert with_check["tp"] == without_check["tp"]
    assert with_check["fp"] <= without_check["fp"]


def test_every_beat_leaves_the_pipeline_once(data_dir, models):
    rec = load_wfdb(data_dir / "mitdb" / "100")
    rec.signal = rec.signal[: int(120 * rec.fs)]
    beats, _ = asyncio.run(replay_with_models(rec, EdgeConfig(), models))
    idx = np.array([b.index for b in beats])
    assert len(idx) == len(set(idx.tolist())) and np.all(np.diff(idx) > 0)
    assert {b.label for b in beats} <= {"N", "S", "V", "F", "Q"}


def test_cli_verify_and_bench_json():
    r = CliRunner().invoke(model_cli, ["verify", str(REPO / "models"), "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(model_cli, ["bench", "--json", "--calls", "20", "--batch", "1"])
    assert r.exit_code == 0, r.output
    assert '"p99_us"' in r.output


def test_cli_verify_fails_on_a_tampered_model(tmp_path):
    import shutil

    shutil.copytree(REPO / "models" / "af_rr", tmp_path / "af_rr")
    f = tmp_path / "af_rr" / "af_rr.fp32.onnx"
    f.write_bytes(f.read_bytes()[:-1])
    r = CliRunner().invoke(model_cli, ["verify", str(tmp_path / "af_rr")])
    assert r.exit_code != 0 and "sha256" in r.output


def test_cli_run_on_a_record(data_dir):
    r = CliRunner().invoke(model_cli, ["run", str(REPO / "models" / "af_rr"), "--input",
                                       str(data_dir / "cpsc2021" / "data_84_1"), "--json"])
    assert r.exit_code == 0, r.output
    assert '"af"' in r.output
