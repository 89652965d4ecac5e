"""The normal-beat check: a beat whose QRS is the patient's usual one is not ventricular."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import BeatClassifierConfig
from edge.detect.beat_morphology import NormalBeatTemplate, correlation
from edge.inference import features as F
from edge.trace.recordings import load_wfdb


@pytest.fixture(scope="module")
def beats_208(data_dir):
    """Beat waveforms of MIT-BIH 208's first 10 minutes, by reference label (N or V)."""
    rec = load_wfdb(data_dir / "mitdb" / "208")
    x = rec.signal[:, 0].astype(np.float64)
    out: dict[str, list[np.ndarray]] = {"N": [], "V": []}
    for i, sym in zip(rec.ann_index, rec.ann_symbol, strict=True):
        lo, hi = F.beat_segment_bounds(int(i), rec.fs)
        if sym in out and lo >= 0 and hi <= min(len(x), int(600 * rec.fs)):
            out[sym].append(F.beat_waveform(x[lo:hi], rec.fs))
    return out


def test_a_normal_beat_matches_the_template_of_the_normal_beats_before_it(beats_208):
    # as in the stream: each beat is compared with the template, then joins it
    t = NormalBeatTemplate(BeatClassifierConfig())
    matched = []
    for w in beats_208["N"][:400]:
        matched.append(t.match(w))
        t.add(w, "N")
    rate = np.mean([m is not None for m in matched[16:]])
    assert rate >= 0.85, rate
    assert all(m >= 0.95 for m in matched if m is not None)


def test_a_reference_pvc_does_not_match_the_normal_beats(beats_208):
    t = NormalBeatTemplate(BeatClassifierConfig())
    for w in beats_208["N"][:16]:
        t.add(w, "N")
    assert len(beats_208["V"]) >= 100
    assert all(t.match(w) is None for w in beats_208["V"][:200])


def test_only_beats_labelled_n_enter_the_normal_template(beats_208):
    t = NormalBeatTemplate(BeatClassifierConfig())
    for w in beats_208["N"][:4]:
        t.add(w, "N")
    for w in beats_208["V"][:40]:  # a run of V beats must not become "normal"
        t.add(w, "V")
    assert t.match(beats_208["V"][40]) is None
    assert t.match(beats_208["N"][4]) is not None


def test_a_beat_of_the_same_shape_but_twice_the_amplitude_is_not_a_match(beats_208):
    t = NormalBeatTemplate(BeatClassifierConfig())
    for w in beats_208["N"][:16]:
        t.add(w, "N")
    same = next(w for w in beats_208["N"][16:] if t.match(w) is not None)
    assert t.match(2.0 * same) is None
    assert t.match(0.5 * same) is None


def test_nothing_matches_before_any_beat_and_after_a_reset(beats_208):
    t = NormalBeatTemplate(BeatClassifierConfig())
    assert t.match(beats_208["N"][0]) is None
    t.add(beats_208["N"][0], "N")
    t.reset()
    assert t.match(beats_208["N"][1]) is None


def test_a_threshold_above_one_turns_the_check_off(beats_208):
    on = NormalBeatTemplate(BeatClassifierConfig())
    off = NormalBeatTemplate(BeatClassifierConfig(normal_match_corr=1.1))
    for w in beats_208["N"][:16]:
        on.add(w, "N")
        off.add(w, "N")
    same = next(w for w in beats_208["N"][16:] if on.match(w) is not None)
    assert off.match(same) is None


def test_correlation_of_a_flat_line_is_zero():
    assert correlation(np.zeros(10), np.arange(10.0)) == 0.0
    assert correlation(np.arange(10.0), 3 * np.arange(10.0) + 1) == pytest.approx(1.0)
