"""Personal baselines: robust statistics, learned before use, deviations flagged after."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edge.clock import VirtualClock
from edge.config import BaselineConfig
from edge.detect.baseline import MAD_TO_SD, BaselineProcessor, BaselineTracker
from edge.pipeline import StreamContext
from edge.types import Priority, VitalKind

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from gen_vitals_scenarios import KEY, generate  # noqa: E402

SHORT = BaselineConfig(learn_s=3600.0, window_s=3600.0, min_samples=30)


def test_baseline_is_the_median_and_scaled_mad_of_minute_medians():
    tr = BaselineTracker(BaselineConfig(learn_s=0.0, min_samples=3, bucket_s=60.0))
    for minute, v in enumerate([70, 72, 74, 200, 71]):  # one outlying minute
        for s in range(0, 60, 10):
            tr.add(VitalKind.HEART_RATE, minute * 60.0 + s, float(v))
    tr.add(VitalKind.HEART_RATE, 301.0, 71.0)  # closes the 5th minute
    st = tr.stats(VitalKind.HEART_RATE, 301.0)
    assert st is not None and st.median == 72.0
    assert st.mad == pytest.approx(max(2.0 * MAD_TO_SD, SHORT.mad_floor_hr))


def test_no_baseline_before_the_learning_period():
    tr = BaselineTracker(SHORT)
    for t in range(0, 3000, 5):
        tr.add(VitalKind.HEART_RATE, float(t), 72.0)
    assert tr.stats(VitalKind.HEART_RATE, 3000.0) is None
    assert tr.stats(VitalKind.HEART_RATE, 3000.0, require_learned=False) is not None


def test_low_quality_readings_do_not_train_the_baseline():
    tr = BaselineTracker(BaselineConfig(learn_s=0.0, min_samples=1))
    for t in range(0, 300):
        tr.add(VitalKind.SPO2, float(t), 70.0, quality=0.1)
    assert tr.stats(VitalKind.SPO2, 300.0) is None


def _deviations(samples, config=SHORT):
    ctx = StreamContext(KEY, 1.0, VirtualClock(1_700_000_000.0))
    proc = BaselineProcessor(ctx, config, BaselineTracker(config), kinds=[VitalKind.HEART_RATE])
    eps = {}
    for s in samples:
        if proc.accepts(s):
            for e in proc.feed(s):
                eps[e.id] = e
    for e in proc.flush():
        eps[e.id] = e
    return list(eps.values())


def test_a_sustained_rise_above_the_personal_baseline_is_an_hr_deviation():
    samples = [s for s in generate("hr_drift", 4) if s.kind is VitalKind.HEART_RATE]
    eps = _deviations(samples)
    assert [e.kind for e in eps] == ["hr_deviation"]
    ep = eps[0]
    assert ep.details["baseline_learned"] is True
    assert ep.details["direction"] == "above"
    assert abs(ep.details["baseline_median"] - 72) < 1.5
    assert ep.priority is Priority.WARNING  # 100 bpm is far beyond 5 MAD of a resting 72
    assert 7200 < ep.onset_index < 8400


def test_nothing_is_flagged_while_the_baseline_is_being_learned():
    samples = [s for s in generate("hr_drift", 4) if s.kind is VitalKind.HEART_RATE]
    assert _deviations(samples, BaselineConfig(learn_s=86400.0)) == []


def test_normal_variation_raises_no_deviation():
    rng = np.random.default_rng(0)
    from edge.types import VitalSample
    samples = [VitalSample(KEY, VitalKind.HEART_RATE, float(72 + rng.normal(0, 3)), "/min",
                           float(t), float(t)) for t in range(0, 3 * 3600, 2)]
    assert _deviations(samples) == []
