"""The shared alarm-fatigue state machine: min duration, hysteresis, re-alert, quality."""

from __future__ import annotations

from edge.detect.alarms import AlarmPolicy, AlarmState, Observation, downgrade
from edge.types import Priority, StreamKey, VitalKind

KEY = StreamKey("dev", "vitals")


def _state(**kw):
    pol = dict(kind="desaturation", priority=Priority.WARNING, min_duration_s=10.0,
               realert_s=60.0, min_readings=1, min_quality=0.5, downgrade_quality=0.8)
    pol.update(kw)
    return AlarmState(AlarmPolicy(**pol), KEY, "test", "1", VitalKind.SPO2, "%")


def _feed(st, values, t0=0.0, limit=90.0, clear=92.0, quality=1.0, severity=None):
    out = []
    for i, v in enumerate(values):
        t = t0 + i
        out += st.update(Observation(t, int(t), 1000.0 + t, v, quality), v < limit, v >= clear,
                         severity)
    return out


def test_a_condition_shorter_than_the_minimum_duration_never_alarms():
    st = _state()
    assert _feed(st, [88] * 9 + [97] * 5) == []


def test_raised_ongoing_after_min_duration_with_onset_back_dated():
    out = _feed(_state(), [97, 97] + [88] * 12)
    assert len(out) == 1 and out[0].status == "ongoing"
    assert out[0].onset_index == 2 and out[0].offset_index == 12


def test_hysteresis_keeps_it_ongoing_between_alarm_and_clear_limits():
    st = _state()
    out = _feed(st, [88] * 12 + [91] * 20)  # 91: not below 90, not cleared at 92
    assert [e.status for e in out] == ["ongoing"]
    out = _feed(st, [93], t0=32)
    assert out[0].status == "ended" and out[0].details["ended_by"] == "value recovered"


def test_a_recurrence_within_realert_reopens_the_same_episode():
    st = _state()
    first = _feed(st, [88] * 12 + [95] * 2)
    again = _feed(st, [88] * 12, t0=30)
    assert again[0].id == first[0].id and again[0].status == "ongoing"
    assert again[0].details["reopened"] == 1


def test_a_recurrence_after_realert_is_a_new_episode():
    st = _state()
    first = _feed(st, [88] * 12 + [95] * 2)
    later = _feed(st, [88] * 12, t0=200)
    assert later[0].id != first[0].id


def test_low_quality_readings_are_not_evidence_and_are_counted():
    st = _state()
    assert _feed(st, [80] * 30, quality=0.2) == []
    out = _feed(st, [88] * 11, t0=30) + _feed(st, [88] * 3, t0=41, quality=0.1) \
        + _feed(st, [95], t0=44)
    assert out[-1].status == "ended" and out[-1].details["low_quality_samples"] == 3


def test_mediocre_quality_downgrades_the_priority_and_says_so():
    out = _feed(_state(), [88] * 12, quality=0.6)
    assert out[0].priority is Priority.INFO and out[0].details["quality_downgraded"] is True
    assert downgrade(Priority.URGENT) is Priority.WARNING


def test_a_more_severe_level_escalates_the_same_episode():
    st = _state()
    out = _feed(st, [88] * 12)
    out += _feed(st, [80] * 3, t0=12, severity=Priority.URGENT)
    assert out[-1].id == out[0].id and out[-1].priority is Priority.URGENT


def test_end_on_gap_ends_an_ongoing_episode():
    st = _state()
    _feed(st, [88] * 12)
    out = st.end(Observation(20, 20, 1020.0, 88), "signal gap")
    assert out[0].status == "ended" and out[0].details["ended_by"] == "signal gap"
    assert out[0].summary is not None and out[0].summary.minimum == 88
