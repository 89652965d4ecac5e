"""Ventricular runs, PVC burden, and evidence snippets kept with episodes."""

from __future__ import annotations

import numpy as np
import pytest

from edge.clock import VirtualClock
from edge.config import EctopyConfig, EvidenceConfig
from edge.detect.ectopy import EctopyProcessor
from edge.detect.evidence import EvidenceRecorder
from edge.pipeline import StreamContext
from edge.types import Beat, ChannelSpec, Episode, Priority, StreamKey
from edge.windowing import Window

FS = 250.0
KEY = StreamKey("d", "ecg")


def _ctx():
    return StreamContext(KEY, FS, VirtualClock(), (ChannelSpec("ECG", "mV"),))


def _beats(labels, rr_s):
    t, out = 0.0, []
    for lab, rr in zip(labels, rr_s, strict=True):
        t += rr
        out.append(Beat(KEY, int(t * FS), FS, t, label=lab))
    return out


def _episodes(proc, beats):
    out = []
    for b in beats:
        out += proc.feed(b)
    out += proc.flush()
    return [o for o in out if isinstance(o, Episode)]


def test_three_fast_ventricular_beats_are_a_run():
    labels = ["N"] * 10 + ["V", "V", "V"] + ["N"] * 10
    rr = [0.8] * 10 + [0.45] * 3 + [0.8] * 10
    eps = [e for e in _episodes(EctopyProcessor(_ctx(), EctopyConfig()), _beats(labels, rr))
           if e.kind == "ventricular_run"]
    assert len(eps) == 1 and eps[0].details["beats"] == 3
    assert eps[0].priority is Priority.WARNING and eps[0].details["rate_bpm"] > 100


def test_a_couplet_or_a_slow_run_is_not_a_run():
    labels = ["N"] * 5 + ["V", "V"] + ["N"] * 5 + ["V", "V", "V"] + ["N"] * 5
    rr = [0.8] * 5 + [0.5] * 2 + [0.8] * 5 + [1.0] * 3 + [0.8] * 5  # second run at 60 bpm
    eps = _episodes(EctopyProcessor(_ctx(), EctopyConfig()), _beats(labels, rr))
    assert [e for e in eps if e.kind == "ventricular_run"] == []


def test_a_run_lasting_30_s_is_sustained_vt_raised_while_it_lasts():
    labels = ["N"] * 5 + ["V"] * 80 + ["N"] * 5
    rr = [0.8] * 5 + [0.4] * 80 + [0.8] * 5
    eps = _episodes(EctopyProcessor(_ctx(), EctopyConfig()), _beats(labels, rr))
    runs = [e for e in eps if e.kind == "ventricular_run"]
    assert runs[0].status == "ongoing" and runs[0].priority is Priority.URGENT
    assert runs[-1].status == "ended" and runs[-1].id == runs[0].id
    assert runs[-1].details["sustained"] is True


def test_pvc_burden_over_ten_percent_is_frequent_pvcs_with_hysteresis():
    # bigeminy for 6 min (50 % PVCs), then sinus
    labels = ["N", "V"] * 360 + ["N"] * 600
    rr = [0.6] * 720 + [0.8] * 600
    eps = [e for e in _episodes(EctopyProcessor(_ctx(), EctopyConfig()), _beats(labels, rr))
           if e.kind == "frequent_pvcs"]
    assert eps[0].status == "ongoing" and eps[-1].status == "ended"
    assert eps[-1].details["peak_pvc_burden_pct"] >= 45
    assert eps[-1].priority is Priority.INFO


def test_evidence_is_cut_around_the_onset_once_the_samples_arrive():
    stored = []
    rec = EvidenceRecorder(_ctx(), EvidenceConfig(pre_s=2.0, post_s=1.0),
                           lambda eid, fs, unit, x: stored.append((eid, fs, unit, x)))
    sig = np.arange(20 * int(FS), dtype=np.float32)
    for start in range(0, int(8 * FS), int(FS)):
        rec.feed(Window(KEY, (), FS, start, 0.0, sig[start:start + int(FS)].reshape(-1, 1)))
    ep = Episode(kind="pause", key=KEY, onset=0.0, offset=1.0, onset_index=int(7.5 * FS),
                 offset_index=int(8 * FS), priority=Priority.WARNING, detector="t",
                 detector_version="1")
    rec.feed(ep)
    assert stored == []  # waits for the post-onset second
    rec.feed(Window(KEY, (), FS, int(8 * FS), 0.0, sig[int(8 * FS):int(9 * FS)].reshape(-1, 1)))
    assert len(stored) == 1
    eid, fs, unit, x = stored[0]
    assert (eid, fs, unit) == (ep.id, FS, "mV")
    np.testing.assert_array_equal(x, sig[int(5.5 * FS):int(8.5 * FS)])
    rec.feed(ep)  # the same episode again (ended revision): no second snippet
    rec.flush()
    assert len(stored) == 1


def test_the_demo_keeps_evidence_for_its_episodes(tmp_path, monkeypatch):
    import sqlite3

    from click.testing import CliRunner

    from edge.cli.main import cli

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["demo", "--fast", "--json"], catch_exceptions=False)
    assert res.exit_code == 0
    db = sqlite3.connect(tmp_path / "edge-demo" / "outbox.sqlite3")
    n_events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    rows = db.execute("SELECT fs, unit, n_samples FROM evidence").fetchall()
    assert n_events >= 1 and len(rows) == n_events
    assert all(fs == 360.0 and unit == "mV" and 0 < n <= 15 * 360 for fs, unit, n in rows)


def test_a_run_keeps_the_rr_intervals_and_classes_it_was_decided_on():
    labels = ["N"] * 10 + ["V", "V", "V"] + ["N"] * 10
    rr = [0.8] * 10 + [0.4, 0.5, 0.5] + [0.8] * 10
    run = [e for e in _episodes(EctopyProcessor(_ctx(), EctopyConfig()), _beats(labels, rr))
           if e.kind == "ventricular_run"][0]
    ev = run.details["evidence"]
    # the four beats before the run (the config default), then the run's three
    assert ev["beat_labels"] == "NNNNVVV"
    # within one sample period (the beats sit on whole samples)
    assert ev["rr_ms"] == pytest.approx([800, 800, 800, 400, 500, 500], abs=1000 / FS)
    assert len(ev["rr_end_index"]) == len(ev["rr_ms"])


def test_a_long_run_keeps_only_its_onset_as_evidence():
    cfg = EctopyConfig(evidence_max_beats=10)
    labels = ["N"] * 10 + ["V"] * 40 + ["N"] * 5
    rr = [0.8] * 10 + [0.4] * 40 + [0.8] * 5
    runs = [e for e in _episodes(EctopyProcessor(_ctx(), cfg), _beats(labels, rr))
            if e.kind == "ventricular_run"]
    assert all(len(r.details["evidence"]["beat_labels"]) == 10 for r in runs)
    assert runs[-1].details["evidence"]["beat_labels"].startswith("NNNNV")
