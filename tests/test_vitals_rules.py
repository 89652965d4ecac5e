"""Vital-sign rules on seeded scenario traces (tools/gen_vitals_scenarios.py).

Scenario traces are synthetic: they test the rules' logic, never detection quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge.clock import VirtualClock
from edge.config import BaselineConfig, PatientConfig, VitalRulesConfig
from edge.detect.baseline import BaselineTracker
from edge.detect.vitals import VitalRules
from edge.pipeline import StreamContext
from edge.types import Priority, VitalKind, VitalSample

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from gen_vitals_scenarios import KEY, SCENARIOS, generate  # noqa: E402


def _run(name, seed=1, patient=None, config=None, baseline=None, samples=None):
    ctx = StreamContext(KEY, 1.0, VirtualClock(1_700_000_000.0))
    rules = VitalRules(ctx, config or VitalRulesConfig(), patient, baseline)
    eps = {}
    for s in samples if samples is not None else generate(name, seed):
        if baseline is not None:
            baseline.add(s.kind, s.device_time, s.value, s.quality)
        if rules.accepts(s):
            for e in rules.feed(s):
                eps[e.id] = e
    for e in rules.flush():
        eps[e.id] = e
    return list(eps.values())


@pytest.mark.parametrize("name", ["normal", "desaturation", "severe_desaturation",
                                  "artefact_desaturation", "brief_dip", "fever", "hypothermia",
                                  "tachypnoea", "bradypnoea"])
@pytest.mark.parametrize("seed", [1, 2])
def test_each_scenario_raises_exactly_its_expected_episodes(name, seed):
    kinds = sorted(e.kind for e in _run(name, seed))
    assert kinds == sorted(SCENARIOS[name].expected)


def test_desaturation_is_a_warning_with_its_limit_and_same_id_when_it_ends():
    (ep,) = _run("desaturation")
    assert ep.priority is Priority.WARNING and ep.status == "ended"
    assert ep.details["limit_pct"] == 90.0 and ep.summary.minimum < 90
    assert 100 < ep.duration < 200


def test_severe_desaturation_is_urgent():
    (ep,) = _run("severe_desaturation")
    assert ep.priority is Priority.URGENT


def test_low_quality_dip_is_suppressed_not_alarmed():
    assert _run("artefact_desaturation") == []


def test_scale2_patient_is_not_alarmed_inside_the_88_to_92_target():
    ctx_samples = [VitalSample(KEY, VitalKind.SPO2, 89.0, "%", float(t), float(t))
                   for t in range(120)]
    assert _run("", samples=ctx_samples, patient=PatientConfig(spo2_scale=2)) == []
    eps = _run("", samples=ctx_samples, patient=PatientConfig(spo2_scale=1))
    assert [e.kind for e in eps] == ["desaturation"]


def test_relative_desaturation_needs_a_learned_baseline():
    samples = generate("desaturation", 3)
    assert "desaturation_relative" not in [e.kind for e in _run("", samples=samples)]
    tracker = BaselineTracker(BaselineConfig(learn_s=200.0, min_samples=3, bucket_s=60.0))
    kinds = [e.kind for e in _run("", samples=samples, baseline=tracker)]
    assert "desaturation_relative" in kinds and "desaturation" in kinds


def test_fever_needs_two_readings_over_two_minutes():
    one = [VitalSample(KEY, VitalKind.TEMPERATURE, 39.0, "Cel", 0.0, 0.0)]
    assert _run("", samples=one) == []
    two = one + [VitalSample(KEY, VitalKind.TEMPERATURE, 39.0, "Cel", 130.0, 130.0)]
    assert [e.kind for e in _run("", samples=two)] == ["fever"]
