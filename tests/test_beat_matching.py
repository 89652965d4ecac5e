"""Specification of beat matching and scoring (edge.evaluate.beats, ANSI/AAMI EC57 style)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edge.evaluate.beats import AAMI_BEAT_SYMBOLS, BeatMatch, match_beats, reference_beats

FS = 1000.0  # 1 sample = 1 ms keeps the examples readable


def test_identical_beats_are_all_true_positives():
    ref = np.array([100, 900, 1700])
    m = match_beats(ref, ref.copy(), FS)
    assert m == BeatMatch(tp=3, fp=0, fn=0)
    assert m.se == m.ppv == m.f1 == 1.0


def test_detection_exactly_150_ms_away_matches_and_151_ms_does_not():
    assert match_beats(np.array([1000]), np.array([1150]), FS).tp == 1
    assert match_beats(np.array([1000]), np.array([850]), FS).tp == 1
    assert match_beats(np.array([1000]), np.array([1151]), FS) == BeatMatch(tp=0, fp=1, fn=1)


def test_tolerance_is_in_seconds_whatever_the_sampling_rate():
    # 54 samples at 360 Hz = 150 ms; 55 samples = 152.8 ms.
    assert match_beats(np.array([1000]), np.array([1054]), 360.0).tp == 1
    assert match_beats(np.array([1000]), np.array([1055]), 360.0).tp == 0
    assert match_beats(np.array([1000]), np.array([1100]), 360.0, tolerance_s=0.3).tp == 1


def test_one_reference_beat_matches_at_most_one_detection():
    m = match_beats(np.array([1000]), np.array([980, 1010]), FS)
    assert m == BeatMatch(tp=1, fp=1, fn=0)


def test_one_detection_matches_at_most_one_reference_beat():
    m = match_beats(np.array([1000, 1100]), np.array([1050]), FS)
    assert m == BeatMatch(tp=1, fp=0, fn=1)


def test_nearest_pair_is_matched_first():
    # Detection 1090 is 90 ms from beat 1000 but 10 ms from beat 1100: it goes to
    # 1100, and detection 1180 (80 ms from 1100) is then left over.
    m = match_beats(np.array([1000, 1100]), np.array([1090, 1180]), FS)
    assert m == BeatMatch(tp=1, fp=1, fn=1)


def test_input_order_does_not_matter():
    ref = np.array([3000, 1000, 2000])
    det = np.array([2010, 990, 5000])
    assert match_beats(ref, det, FS) == BeatMatch(tp=2, fp=1, fn=1)


def test_nothing_to_find_and_nothing_detected_scores_one():
    m = match_beats(np.array([], dtype=np.int64), np.array([], dtype=np.int64), FS)
    assert m == BeatMatch(0, 0, 0)
    assert m.se == 1.0 and m.ppv == 1.0 and m.f1 == 1.0


def test_nothing_detected_gives_zero_sensitivity_and_ppv_one():
    m = match_beats(np.array([100, 200]), np.array([], dtype=np.int64), FS)
    assert m == BeatMatch(tp=0, fp=0, fn=2)
    assert m.se == 0.0 and m.ppv == 1.0


def test_detections_without_reference_give_zero_ppv_and_sensitivity_one():
    m = match_beats(np.array([], dtype=np.int64), np.array([100]), FS)
    assert m == BeatMatch(tp=0, fp=1, fn=0)
    assert m.se == 1.0 and m.ppv == 0.0 and m.f1 == 0.0


def test_se_ppv_f1_formulas():
    m = BeatMatch(tp=90, fp=10, fn=30)
    assert m.se == pytest.approx(90 / 120)
    assert m.ppv == pytest.approx(90 / 100)
    assert m.f1 == pytest.approx(2 * 90 / (2 * 90 + 10 + 30))


def test_matches_add_up_to_gross_statistics():
    a = BeatMatch(tp=100, fp=0, fn=0)
    b = BeatMatch(tp=10, fp=5, fn=10)
    total = a + b
    assert total == BeatMatch(tp=110, fp=5, fn=10)
    # Gross Se is not the mean of per-record Se.
    assert total.se == pytest.approx(110 / 120)
    assert sum([a, b]) == total


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        BeatMatch(tp=-1, fp=0, fn=0)


def test_nan_indices_are_refused():
    with pytest.raises(ValueError):
        match_beats(np.array([1.0, np.nan]), np.array([1.0]), FS)


def test_aami_beat_symbols_are_the_ec57_beat_codes():
    assert set("NLRejAaJSVEF/fQ") <= AAMI_BEAT_SYMBOLS
    assert {"B", "?", "n", "r"} <= AAMI_BEAT_SYMBOLS
    assert not ({"+", "~", "|", '"', "!", "[", "]", "x"} & AAMI_BEAT_SYMBOLS)


def test_reference_beats_keeps_only_beat_annotations():
    ann = SimpleNamespace(
        sample=np.array([5, 10, 20, 30, 40, 50, 60, 70]),
        symbol=["+", "N", "~", "V", "|", "F", '"', "/"],
    )
    np.testing.assert_array_equal(reference_beats(ann), [10, 30, 50, 70])


def test_reference_beats_of_mitdb_208_counts_its_992_v_and_373_f_beats(data_dir):
    wfdb = pytest.importorskip("wfdb")
    base = data_dir / "mitdb" / "208"
    if not base.with_suffix(".hea").exists():
        pytest.skip(f"MIT-BIH 208 not found under {data_dir}")
    ann = wfdb.rdann(str(base), "atr")
    beats = reference_beats(ann)
    symbols = np.asarray(ann.symbol)
    assert (symbols == "V").sum() == 992 and (symbols == "F").sum() == 373
    # 2955 beats; the 53 '+' rhythm, 24 '~' noise and 8 '|' artefact marks are dropped.
    assert beats.size == 2955
    assert beats.size == len(ann.sample) - 53 - 24 - 8
