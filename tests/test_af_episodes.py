"""AF episode rules (edge.detect.af): windows, episodes, bursts, withheld judgement, evidence."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edge.clock import VirtualClock
from edge.config import AfConfig, EdgeConfig
from edge.detect.af import (
    AF_BURST,
    AF_EPISODE,
    AfProcessor,
    RrWindow,
    RrWindower,
    episodes_offline,
    rr_windows_from_beats,
)
from edge.detect.models import ModelSet
from edge.evaluate.af import replay_with_models, score_spans
from edge.inference import features as F
from edge.pipeline import StreamContext
from edge.trace.recordings import load_wfdb
from edge.types import ChannelSpec, Episode, Gap, GapReason, Priority, StreamKey

FS = 100.0
KEY = StreamKey("dev", "ecg")


def _windows(n: int, step_s: float = 6.0, span_s: float = 24.0) -> list[RrWindow]:
    """``n`` windows every ``step_s`` seconds, each ``span_s`` long (hop-8-like timing)."""
    out = []
    for k in range(n):
        start = int(k * step_s * FS)
        end = start + int(span_s * FS)
        out.append(RrWindow(np.full(F.AF_WINDOW_RR, 0.75), np.arange(32), start, end,
                            {"N": 33}, 0))
    return out


def test_af_lasting_the_minimum_duration_is_one_warning_episode():
    cfg = AfConfig(min_duration_s=30.0)
    probs = [0.1] * 5 + [0.9] * 12 + [0.1] * 5
    spans = episodes_offline(probs, _windows(len(probs)), cfg, FS)
    assert len(spans) == 1 and spans[0][0] == AF_EPISODE
    w = _windows(len(probs))
    # onset: centre of the first positive window; offset: centre of the last one
    assert spans[0][1:] == (w[5].centre, w[16].centre)


def test_a_short_irregular_run_is_a_burst_and_a_single_window_is_dropped():
    cfg = AfConfig(min_duration_s=30.0, burst_min_windows=2)
    probs = [0.1] * 5 + [0.9] * 3 + [0.1] * 10 + [0.9] + [0.1] * 5
    spans = episodes_offline(probs, _windows(len(probs)), cfg, FS)
    assert [s[0] for s in spans] == [AF_BURST]


def test_minimum_duration_is_configurable():
    probs = [0.1] * 3 + [0.9] * 4 + [0.1] * 3  # about 18 s of positive window centres
    w = _windows(len(probs))
    assert [s[0] for s in episodes_offline(probs, w, AfConfig(min_duration_s=30.0), FS)] \
        == [AF_BURST]
    assert [s[0] for s in episodes_offline(probs, w, AfConfig(min_duration_s=15.0), FS)] \
        == [AF_EPISODE]


def test_unusable_windows_withhold_judgement_without_ending_or_starting_af():
    cfg = AfConfig(min_duration_s=30.0, merge_gap_s=30.0)
    # AF, then 3 unusable windows (18 s < merge gap), then AF again: one episode
    probs: list[float | None] = [0.9] * 8 + [None] * 3 + [0.9] * 4 + [0.1] * 3
    spans = episodes_offline(probs, _windows(len(probs)), cfg, FS)
    assert len(spans) == 1 and spans[0][0] == AF_EPISODE
    # noise alone never starts anything
    assert episodes_offline([None] * 20, _windows(20), cfg, FS) == []


def test_af_resuming_within_the_merge_gap_continues_the_episode():
    cfg = AfConfig(min_duration_s=30.0, merge_gap_s=30.0)
    probs = [0.9] * 8 + [0.1] * 2 + [0.9] * 8 + [0.1] * 2
    spans = episodes_offline(probs, _windows(len(probs)), cfg, FS)
    assert len(spans) == 1
    far = [0.9] * 8 + [0.1] * 12 + [0.9] * 8 + [0.1] * 2
    assert len(episodes_offline(far, _windows(len(far)), cfg, FS)) == 2


def test_rr_next_to_a_ventricular_beat_is_left_out():
    # ventricular bigeminy: N V N V ... every interval touches a V beat -> no window
    idx = np.arange(0, 200) * 80
    labels = ["N" if k % 2 == 0 else "V" for k in range(200)]
    assert rr_windows_from_beats(idx, labels, FS, 8, ("V",)) == []
    w = RrWindower(FS, 8, ("V",))
    for i, lab in zip(idx, labels, strict=True):
        w.add(int(i), lab)
    assert w.rr_excluded == 199
    # without the exclusion the same beats make windows
    assert len(rr_windows_from_beats(idx, labels, FS, 8, ())) > 0


def test_window_counts_the_excluded_intervals_inside_its_span():
    idx = np.arange(0, 60) * 80
    labels = ["N"] * 60
    labels[20] = "V"
    wins = rr_windows_from_beats(idx, labels, FS, 8, ("V",))
    assert wins and wins[0].excluded == 2 and wins[0].labels == {"N": 32}
    assert wins[0].start < idx[20] < wins[0].end


@pytest.fixture(scope="module")
def models() -> ModelSet:
    return ModelSet.from_config(EdgeConfig())


def test_processor_and_offline_tracker_agree_on_a_real_record(data_dir, models):
    # CPSC 2021 data_101_8: paroxysmal AF. The pipeline step and the offline function
    # the training script cross-validates with must give the same spans.
    rec = load_wfdb(data_dir / "cpsc2021" / "data_101_8")
    cfg = EdgeConfig()
    beats, _ = asyncio.run(replay_with_models(rec, cfg, models))
    ctx = StreamContext(KEY, rec.fs, VirtualClock(), (ChannelSpec("ECG", "mV"),))
    proc = AfProcessor(ctx, models.af, cfg.af)
    out: list[Episode] = []
    for b in beats:
        out += [e for e in proc.feed(b) if isinstance(e, Episode)]
    out += [e for e in proc.flush() if isinstance(e, Episode)]
    final = {e.id: e for e in out}
    live = sorted((e.kind, e.onset_index, e.offset_index) for e in final.values())
    wins = rr_windows_from_beats(np.array([b.index for b in beats]), [b.label for b in beats],
                                 rec.fs, cfg.af.hop_beats, cfg.af.exclude_rr_labels)
    probs = models.af.model.run(F.af_features(np.stack([w.rr for w in wins])))[:, 1]
    offline = episodes_offline([float(p) for p in probs], wins, cfg.af, rec.fs)
    assert live == sorted(offline)
    assert proc.windows_scored == len(wins)
    # every AF finding carries its evidence and versions
    for e in final.values():
        assert e.kind in (AF_EPISODE, AF_BURST)
        assert e.priority is (Priority.WARNING if e.kind == AF_EPISODE else Priority.INFO)
        ev = e.details["evidence"]
        assert len(ev["rr_ms"]) == F.AF_WINDOW_RR and len(ev["rr_end_index"]) == F.AF_WINDOW_RR
        assert e.details["model_version"] == models.af.model.version
        assert e.details["rules"] and e.details["usable_signal_fraction"] is None


def test_a_gap_ends_an_open_episode(data_dir, models):
    rec = load_wfdb(data_dir / "cpsc2021" / "data_84_1")
    cfg = EdgeConfig()
    beats, _ = asyncio.run(replay_with_models(rec, cfg, models))
    ctx = StreamContext(KEY, rec.fs, VirtualClock(), (ChannelSpec("ECG", "mV"),))
    proc = AfProcessor(ctx, models.af, cfg.af)
    out: list[Episode] = []
    half = [b for b in beats if b.index < rec.n_samples // 2]
    for b in half:
        out += [e for e in proc.feed(b) if isinstance(e, Episode)]
    out += [e for e in proc.feed(Gap(KEY, half[-1].index, half[-1].index + 10,
                                             GapReason.DISCONNECT, 0.0))
            if isinstance(e, Episode)]
    assert out and out[-1].status == "ended" and out[-1].details["ended_by"] == "signal gap"


def test_unusable_signal_is_not_judged(data_dir, models):
    rec = load_wfdb(data_dir / "cpsc2021" / "data_84_1")  # persistent AF
    cfg = EdgeConfig()
    beats, _ = asyncio.run(replay_with_models(rec, cfg, models))
    ctx = StreamContext(KEY, rec.fs, VirtualClock(), (ChannelSpec("ECG", "mV"),))
    proc = AfProcessor(ctx, models.af, cfg.af, quality_at=lambda i: 0.1)
    out = [e for b in beats for e in proc.feed(b)] + list(proc.flush())
    assert out == [] and proc.windows_scored == 0 and proc.windows_withheld > 0


def test_score_spans_reports_onset_offset_and_short_episodes():
    fs = 100.0
    ref = [(1000, 10000), (20000, 21500)]  # 90 s and 15 s of AF
    det = [(1500, 9000)]  # onset 5 s late, offset 10 s early
    c = score_spans(ref, det, fs, 30.0, bursts=[(20200, 21000)])
    assert (c["ref_detected"], c["det_true"], c["matched"]) == (1, 1, 1)
    assert c["onset_within_tol"] == 1 and c["offset_within_tol"] == 1
    assert (c["ref_short"], c["ref_short_found"], c["bursts_true"]) == (1, 1, 1)


def test_no_af_on_electrode_motion_noise(data_dir):
    # NSTDB 118e00 / 118e06: MIT-BIH 118 (no AF) with 0 and 6 dB electrode-motion noise.
    # The noise makes the QRS detector's RR intervals irregular; at SQI 0.5 both raised a
    # false AF alarm. AF needs signal at [af] min_sqi: no AF episode or burst at all.
    from edge.evaluate.alarms import false_alarms

    r = false_alarms([data_dir / "nstdb-118e-csv" / f"118e{snr}.csv" for snr in ("00", "06")])
    for row in r["records"]:
        assert "atrial_fibrillation" not in row["by_kind"], row
    assert r["total"]["by_priority"]["urgent"] == 0


def test_false_alarm_report_counts_every_priority(data_dir):
    from edge.evaluate.alarms import false_alarms

    # v102s (a false VT alarm) and a103l (a false asystole alarm) at the bedside:
    # no urgent alarm here (issue #14)
    icu = data_dir / "physionet-icu-samples"
    r = false_alarms([icu / "v102s", icu / "a103l"])
    for row in r["records"]:
        assert set(row["by_priority"]) == {"urgent", "warning", "info"}
        assert row["by_priority"]["urgent"] == 0
        assert sum(row["by_priority"].values()) >= row["alarms"]
    assert r["total"]["per_hour_by_priority"]["urgent"] == 0.0


def test_exclude_rr_labels_setting_is_a_list_of_labels(tmp_path):
    from edge.config import load_config
    from edge.errors import ConfigError

    p = tmp_path / "edge.toml"
    p.write_text('[af]\nexclude_rr_labels = ["V", "S"]\n')
    assert load_config(p).af.exclude_rr_labels == ("V", "S")
    p.write_text('[af]\nexclude_rr_labels = "V"\n')
    with pytest.raises(ConfigError, match="exclude_rr_labels"):
        load_config(p)


def test_evaluate_af_cli_gives_per_record_rows_and_a_tachogram_plot(data_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from edge.cli.main import cli

    rec = data_dir / "cpsc2021" / "data_101_9"
    r = CliRunner().invoke(cli, ["evaluate", "--task", "af", "--json", "--plot",
                                  str(tmp_path), str(rec)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    # the keys kept from before, and one row per record
    assert {"se", "ppv", "duration_se", "duration_ppv"} <= set(res["total"])
    assert [row["record"] for row in res["records"]] == ["data_101_9"]
    assert (tmp_path / "data_101_9-af.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
