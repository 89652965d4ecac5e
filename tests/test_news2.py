"""NEWS2 (RCP 2017): every worked example and every band edge of shared/spec/news2.md."""

from __future__ import annotations

import pytest

from edge.config import News2Config, PatientConfig
from edge.detect.news2 import (
    News2Processor,
    RiskBand,
    news2_score,
    score_consciousness,
    score_pulse,
    score_respiration_rate,
    score_spo2,
    score_systolic_bp,
    score_temperature,
)
from edge.types import Priority, StreamKey, VitalKind, VitalSample

ORDER = ("respiration_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse", "consciousness",
         "temperature")

# news2.md section 3: inputs (RR, SpO2, scale, O2, SBP, P, ACVPU, T), points, total, band
WORKED = [
    (1, (16, 98, 1, False, 124, 72, "A", 36.8), (0, 0, 0, 0, 0, 0, 0), 0, RiskBand.LOW,
     "12-hourly"),
    (2, (22, 95, 1, False, 118, 96, "A", 37.9), (2, 1, 0, 0, 1, 0, 0), 4, RiskBand.LOW,
     "4-6-hourly"),
    (3, (18, 97, 1, False, 88, 80, "A", 36.5), (0, 0, 0, 3, 0, 0, 0), 3, RiskBand.LOW_MEDIUM,
     "1-hourly"),
    (4, (21, 94, 1, False, 108, 95, "A", 36.9), (2, 1, 0, 1, 1, 0, 0), 5, RiskBand.MEDIUM,
     "1-hourly"),
    (5, (26, 90, 1, True, 98, 125, "A", 39.3), (3, 3, 2, 2, 2, 0, 2), 14, RiskBand.HIGH,
     "continuous"),
    (6, (20, 89, 2, False, 130, 88, "A", 37.0), (0, 0, 0, 0, 0, 0, 0), 0, RiskBand.LOW,
     "12-hourly"),
    (7, (20, 89, 1, False, 130, 88, "A", 37.0), (0, 3, 0, 0, 0, 0, 0), 3, RiskBand.LOW_MEDIUM,
     "1-hourly"),
    (8, (18, 98, 2, True, 126, 78, "A", 36.6), (0, 3, 2, 0, 0, 0, 0), 5, RiskBand.MEDIUM,
     "1-hourly"),
    ("8-air", (18, 98, 2, False, 126, 78, "A", 36.6), (0, 0, 0, 0, 0, 0, 0), 0, RiskBand.LOW,
     "12-hourly"),
    (9, (20, 96, 1, False, 112, 90, "C", 38.1), (0, 0, 0, 0, 0, 3, 1), 4, RiskBand.LOW_MEDIUM,
     "1-hourly"),
    (10, (8, 91, 1, True, 220, 40, "U", 35.0), (3, 3, 2, 3, 3, 3, 3), 20, RiskBand.HIGH,
     "continuous"),
    ("S2-96-O2", (19, 96, 2, True, 140, 84, "A", 37.2), (0, 2, 2, 0, 0, 0, 0), 4, RiskBand.LOW,
     "4-6-hourly"),
]


def _score(inputs):
    rr, spo2, scale, o2, sbp, pulse, acvpu, temp = inputs
    return news2_score(respiration_rate=rr, spo2=spo2, spo2_scale=scale, on_oxygen=o2,
                       systolic_bp=sbp, pulse=pulse, consciousness=acvpu, temperature=temp)


@pytest.mark.parametrize("example,inputs,points,total,band,monitoring", WORKED,
                         ids=[str(w[0]) for w in WORKED])
def test_worked_examples_of_the_spec(example, inputs, points, total, band, monitoring):
    r = _score(inputs)
    assert tuple(r.points[k] for k in ORDER) == points
    assert r.complete and r.total == total
    assert r.band is band
    assert r.monitoring == monitoring


@pytest.mark.parametrize("value,points", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2),
                                          (24, 2), (25, 3)])
def test_respiration_rate_band_edges(value, points):
    assert score_respiration_rate(value) == points


@pytest.mark.parametrize("value,points", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)])
def test_spo2_scale1_band_edges(value, points):
    assert score_spo2(value, 1, on_oxygen=False) == points
    assert score_spo2(value, 1, on_oxygen=True) == points  # scale 1 ignores oxygen


@pytest.mark.parametrize("value,on_oxygen,points", [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1),
    (88, False, 0), (92, False, 0), (93, False, 0), (93, True, 1), (94, True, 1),
    (95, True, 2), (96, True, 2), (97, True, 3), (84, True, 2), (100, False, 0)])
def test_spo2_scale2_band_edges(value, on_oxygen, points):
    assert score_spo2(value, 2, on_oxygen=on_oxygen) == points


def test_scale2_scores_high_saturation_only_on_oxygen():
    assert score_spo2(98, 2, on_oxygen=False) == 0
    assert score_spo2(98, 2, on_oxygen=True) == 3


def test_scale2_high_saturation_with_unknown_oxygen_is_missing_not_zero():
    assert score_spo2(95, 2, on_oxygen=None) is None
    r = news2_score(respiration_rate=16, spo2=95, spo2_scale=2, systolic_bp=120, pulse=70,
                    consciousness="A", temperature=37.0)
    assert "spo2" in r.missing and "air_or_oxygen" in r.missing
    assert r.total is None and r.band is None


@pytest.mark.parametrize("value,points", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1),
                                          (111, 0), (219, 0), (220, 3)])
def test_systolic_bp_band_edges(value, points):
    assert score_systolic_bp(value) == points


@pytest.mark.parametrize("value,points", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1),
                                          (110, 1), (111, 2), (130, 2), (131, 3)])
def test_pulse_band_edges(value, points):
    assert score_pulse(value) == points


@pytest.mark.parametrize("value,points", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0),
                                          (38.1, 1), (39.0, 1), (39.1, 2), (41.5, 2)])
def test_temperature_band_edges(value, points):
    assert score_temperature(value) == points


@pytest.mark.parametrize("acvpu,points", [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_new_confusion_scores_like_voice_pain_unresponsive(acvpu, points):
    assert score_consciousness(acvpu) == points


@pytest.mark.parametrize("fn,value,points", [
    (score_temperature, 38.05, 1),  # half-up to 38.1
    (score_temperature, 38.04, 0),
    (score_temperature, 35.05, 1),  # 35.1
    (score_respiration_rate, 20.4, 0),
    (score_respiration_rate, 20.5, 2),  # 21
    (score_spo2, 95.6, 0),  # 96
    (score_pulse, 90.5, 1),
    (score_systolic_bp, 90.49, 3),
])
def test_fractional_sensor_values_are_rounded_half_up_before_scoring(fn, value, points):
    assert fn(value) == points


def test_a_missing_parameter_is_never_scored_as_zero():
    r = news2_score(respiration_rate=16, spo2=98, on_oxygen=False, pulse=72, consciousness="A",
                    temperature=36.8)
    assert r.missing == ("systolic_bp",)
    assert not r.complete and r.total is None and r.band is None
    assert r.partial_total == 0


def test_aggregate_band_wins_over_a_red_score():
    r = news2_score(respiration_rate=26, spo2=97, on_oxygen=False, systolic_bp=105, pulse=95,
                    consciousness="A", temperature=37.0)  # 3 + 0 + 0 + 1 + 1 = 5 with a 3
    assert r.red_score and r.total == 5 and r.band is RiskBand.MEDIUM


# -- the streaming processor -----------------------------------------------------------------

T0 = 1_700_000_000.0
KEY = StreamKey("oxi-01", "vitals")


def _patient(**kw):
    base = dict(devices=("oxi-01",), news2_eligible=True, on_oxygen="air",
                on_oxygen_entered_at="2023-11-14T22:00:00Z", consciousness="A",
                consciousness_entered_at="2023-11-14T22:00:00Z", entered_by="nurse-7")
    base.update(kw)
    return PatientConfig(**base)


def _vitals(t, rr=16, spo2=98, sbp=124, pulse=72, temp=36.8):
    out = []
    for kind, v in ((VitalKind.RESP_RATE, rr), (VitalKind.SPO2, spo2),
                    (VitalKind.SYSTOLIC_BP, sbp), (VitalKind.HEART_RATE, pulse),
                    (VitalKind.TEMPERATURE, temp)):
        if v is not None:
            out.append(VitalSample(KEY, kind, float(v), "", t, t))
    return out


def _proc(patient=None, **cfg):
    return News2Processor(News2Config(**cfg), patient or _patient(),
                          wall_of=lambda s: T0 + s.device_time)


def _run(proc, t, **vitals):
    out = []
    for s in _vitals(t, **vitals):
        out += list(proc.feed(s))
    return out


def test_processor_scores_complete_sets_and_reports_input_ages():
    proc = _proc()
    _run(proc, 0.0)
    r = proc.latest
    assert r is not None and r.complete and r.total == 0
    assert r.input_age_s["consciousness"] == pytest.approx(T0 - 1_699_999_200.0)


def test_stale_sensor_values_make_the_score_incomplete_and_are_named():
    proc = _proc(max_age_sbp_s=600.0)
    _run(proc, 0.0)
    _run(proc, 700.0, sbp=None)
    r = proc.latest
    assert r is not None and not r.complete
    assert "systolic_bp" in r.stale and "systolic_bp" in r.missing
    assert r.input_age_s["systolic_bp"] == pytest.approx(700.0)


def test_stale_clinician_entries_are_flagged():
    proc = _proc(clinician_entry_max_age_s=600.0)  # entries are 2 h old at T0
    _run(proc, 0.0)
    r = proc.latest
    assert r is not None and set(r.stale) >= {"air_or_oxygen", "consciousness"}
    assert r.total is None


def test_no_news2_without_the_clinician_confirming_eligibility():
    proc = _proc(_patient(news2_eligible=False))
    _run(proc, 0.0)
    assert proc.latest is not None and "news2_eligible" in proc.latest.missing


def test_escalation_is_raised_when_the_band_rises_and_ended_under_the_same_id():
    proc = _proc()
    out = []
    for i in range(3):
        out += _run(proc, 60.0 * i)  # low
    assert out == []
    for i in range(3, 6):
        out += _run(proc, 60.0 * i, rr=21, spo2=94, sbp=108, pulse=95)  # 5: medium
    assert len(out) == 1 and out[0].status == "ongoing"
    assert out[0].priority is Priority.WARNING and out[0].details["band"] == "medium"
    for i in range(6, 9):
        out += _run(proc, 60.0 * i, rr=26, spo2=90, sbp=98, pulse=125, temp=39.3)  # high
    assert out[-1].id == out[0].id and out[-1].priority is Priority.URGENT
    assert out[-1].details["escalated_to"] == "high"
    out += _run(proc, 60.0 * 9) + _run(proc, 60.0 * 10)
    assert out[-1].status == "ended" and out[-1].id == out[0].id


def test_one_outlying_reading_does_not_escalate():
    proc = _proc()
    out = _run(proc, 0.0)
    out += proc.feed(VitalSample(KEY, VitalKind.HEART_RATE, 135.0, "", 10.0, 10.0))  # red 3
    out += proc.feed(VitalSample(KEY, VitalKind.HEART_RATE, 72.0, "", 11.0, 11.0))
    out += _run(proc, 70.0) + _run(proc, 130.0)
    assert list(out) == []
    assert proc.latest is not None and proc.latest.band is RiskBand.LOW
