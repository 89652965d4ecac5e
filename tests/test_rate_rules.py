"""Brady, tachy, pause and asystole rules on beat trains with known timing.

These test the rule logic (thresholds, minimum duration, hysteresis,
re-alert merging) with beats placed at exact times; detection quality on
real recordings is tested in test_qrs.py and test_cli.py.
"""

from __future__ import annotations

import numpy as np

from edge.clock import VirtualClock
from edge.config import HeartRateConfig, RateRulesConfig
from edge.detect.rate import HeartRateProcessor, RateRules
from edge.pipeline import StreamContext
from edge.types import Beat, Episode, Gap, GapReason, Priority, StreamKey
from edge.windowing import Window

FS = 250.0
KEY = StreamKey("d", "ecg")


def _ctx():
    return StreamContext(KEY, FS, VirtualClock(start_wall=1_000_000.0))


def _beats_at(times_s):
    return [Beat(KEY, int(round(t * FS)), FS, t) for t in times_s]


def _train(*segments):
    """segments: (duration_s, bpm); returns beat times."""
    t, out = 0.0, []
    for duration, bpm in segments:
        end = t + duration
        while t < end:
            out.append(t)
            t += 60.0 / bpm
    return out


def _run(rules, beats, windows_to=None):
    out = []
    for b in beats:
        out += rules.feed(b)
    if windows_to is not None:
        for end in range(0, int(windows_to * FS), int(FS)):
            out += rules.feed(Window(KEY, (), FS, end, 0.0, np.zeros((int(FS), 1))))
    out += rules.flush()
    return [o for o in out if isinstance(o, Episode)]


def _final(episodes, kind):
    by_id = {}
    for e in episodes:
        if e.kind == kind:
            by_id[e.id] = e
    return list(by_id.values())


def test_sustained_tachycardia_becomes_one_episode_with_its_rate_summary():
    cfg = RateRulesConfig()
    rules = RateRules(_ctx(), cfg, HeartRateConfig())
    eps = _run(rules, _beats_at(_train((60, 70), (60, 150), (60, 70))))
    tachy = _final(eps, "tachycardia")
    assert len(tachy) == 1
    ep = tachy[0]
    assert ep.status == "ended" and ep.priority is Priority.WARNING
    assert 58 <= ep.onset_index / FS <= 64  # onset back-dated to when the rate crossed
    assert 118 <= ep.offset_index / FS <= 126
    assert ep.summary is not None and 140 <= ep.summary.maximum <= 151
    assert ep.detector == "rate_rules" and ep.detector_version


def test_tachycardia_is_raised_as_ongoing_before_it_ends():
    rules = RateRules(_ctx(), RateRulesConfig(), HeartRateConfig())
    eps = _run(rules, _beats_at(_train((30, 70), (60, 150), (30, 70))))
    statuses = [e.status for e in eps if e.kind == "tachycardia"]
    assert statuses[0] == "ongoing" and statuses[-1] == "ended"
    assert len({e.id for e in eps if e.kind == "tachycardia"}) == 1


def test_a_rate_burst_shorter_than_the_minimum_duration_raises_nothing():
    cfg = RateRulesConfig(min_duration_s=10.0)
    rules = RateRules(_ctx(), cfg, HeartRateConfig())
    eps = _run(rules, _beats_at(_train((30, 70), (6, 150), (30, 70))))
    assert _final(eps, "tachycardia") == []


def test_hysteresis_keeps_an_episode_open_between_the_clear_and_alarm_limits():
    cfg = RateRulesConfig(tachy_bpm=120, tachy_clear_bpm=110)
    rules = RateRules(_ctx(), cfg, HeartRateConfig())
    eps = _run(rules, _beats_at(_train((20, 70), (30, 130), (30, 115), (30, 70))))
    tachy = _final(eps, "tachycardia")
    assert len(tachy) == 1
    assert tachy[0].offset_index / FS > 78  # still open through the 115 bpm stretch


def test_a_second_episode_within_the_realert_interval_reopens_the_first():
    cfg = RateRulesConfig(realert_s=300)
    rules = RateRules(_ctx(), cfg, HeartRateConfig())
    eps = _run(rules, _beats_at(_train((20, 70), (30, 150), (40, 70), (30, 150), (20, 70))))
    tachy = _final(eps, "tachycardia")
    assert len(tachy) == 1
    assert tachy[0].details.get("reopened") == 1


def test_bradycardia_below_the_limit():
    rules = RateRules(_ctx(), RateRulesConfig(brady_bpm=40), HeartRateConfig())
    eps = _run(rules, _beats_at(_train((30, 70), (60, 35), (30, 70))))
    brady = _final(eps, "bradycardia")
    assert len(brady) == 1 and brady[0].summary.minimum < 40


def test_a_pause_is_reported_with_its_length():
    rules = RateRules(_ctx(), RateRulesConfig(pause_s=3.0, asystole_s=4.0), HeartRateConfig())
    # the first train's last beat is at 19 s: a 3.5 s pause
    times = _train((20, 60)) + [t + 22.5 for t in _train((20, 60))]
    eps = _run(rules, _beats_at(times))
    pauses = _final(eps, "pause")
    assert len(pauses) == 1
    assert pauses[0].details["longest_rr_s"] == 3.5


def test_asystole_is_raised_while_it_lasts_then_ended_by_the_next_beat():
    rules = RateRules(_ctx(), RateRulesConfig(asystole_s=4.0), HeartRateConfig())
    before = _beats_at(_train((20, 60)))
    out = []
    for b in before:
        out += rules.feed(b)
    last = before[-1].index
    for end in range(last, last + int(10 * FS), int(FS)):  # 10 s of flat signal
        out += rules.feed(Window(KEY, (), FS, end, 0.0, np.zeros((int(FS), 1))))
    ongoing = [e for e in out if isinstance(e, Episode) and e.kind == "asystole"]
    assert len(ongoing) == 1 and ongoing[0].status == "ongoing"
    assert ongoing[0].priority is Priority.URGENT
    out = list(rules.feed(Beat(KEY, last + int(10 * FS), FS, 0.0)))
    ended = [e for e in out if e.kind == "asystole"]
    assert ended[0].id == ongoing[0].id and ended[0].status == "ended"
    assert ended[0].details["longest_rr_s"] == 10.0


def test_a_gap_never_counts_as_a_pause():
    rules = RateRules(_ctx(), RateRulesConfig(), HeartRateConfig())
    a = _beats_at(_train((20, 60)))
    b = _beats_at([t + 40 for t in _train((20, 60))])
    out = []
    for beat in a:
        out += rules.feed(beat)
    out += rules.feed(Gap(KEY, a[-1].index + 10, b[0].index - 10, GapReason.DISCONNECT, 0.0))
    for beat in b:
        out += rules.feed(beat)
    assert not [e for e in out if e.kind in ("pause", "asystole")]


def test_episode_times_map_to_utc_through_the_stream_clock():
    rules = RateRules(_ctx(), RateRulesConfig(), HeartRateConfig())
    eps = _run(rules, _beats_at(_train((30, 70), (60, 150), (30, 70))))
    ep = _final(eps, "tachycardia")[0]
    assert ep.onset == 1_000_000.0 + ep.onset_index / FS


def test_heart_rate_is_reported_periodically_as_the_median_of_recent_beats():
    hr = HeartRateProcessor(_ctx(), HeartRateConfig(report_every_s=5))
    out = []
    for b in _beats_at(_train((60, 75))):
        out += hr.feed(b)
    assert 10 <= len(out) <= 12
    assert all(abs(v.value - 75) < 0.5 for v in out)


def _replay(signal, fs):
    import asyncio

    from edge.app import run_pipeline
    from edge.config import EdgeConfig
    from edge.sources.replay import RecordingSource
    from edge.trace.recordings import Recording
    from edge.types import ChannelSpec

    rec = Recording("t", fs, (ChannelSpec("MLII", "mV"),),
                    signal.astype(np.float32).reshape(-1, 1))
    src = RecordingSource(rec, clock=VirtualClock(start_wall=0.0))
    _, summary = asyncio.run(run_pipeline(src, EdgeConfig()))
    return [e for e in summary.episodes.values()]


def test_a_flat_line_in_real_ecg_is_asystole(data_dir):
    """MIT-BIH 100 with 8 s replaced by a near-flat line (electrodes on, heart silent)."""
    from edge.trace.recordings import load_wfdb

    rec = load_wfdb(data_dir / "mitdb" / "100")
    x = rec.signal[: 120 * 360, 0].astype(np.float64).copy()
    rng = np.random.default_rng(0)
    a, b = 60 * 360, 68 * 360
    x[a:b] = np.median(x[a - 360:a]) + rng.normal(0, 0.01, b - a)
    eps = _replay(x, 360.0)
    asys = [e for e in eps if e.kind == "asystole"]
    assert len(asys) == 1 and asys[0].priority is Priority.URGENT
    assert 7.0 <= (asys[0].offset_index - asys[0].onset_index) / 360 <= 9.5


def test_amplifier_saturation_without_qrs_is_signal_inadequate_not_asystole(data_dir):
    """MIT-BIH 208 around 23:04: the amplifier saturates and recovers; no QRS for 5 s."""
    from edge.trace.recordings import load_wfdb

    rec = load_wfdb(data_dir / "mitdb" / "208")
    x = rec.signal[1340 * 360: 1420 * 360, 0]
    eps = _replay(x, 360.0)
    assert not [e for e in eps if e.kind in ("asystole", "pause")]
    inadequate = [e for e in eps if e.kind == "ecg_signal_inadequate"]
    assert len(inadequate) == 1 and inadequate[0].priority is Priority.INFO
    assert inadequate[0].details["suppressed"] in ("asystole", "pause")
