"""PPG heart rate: peaks at rest (BIDMC finger PPG vs its ECG), rate under motion (SPC 2015)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.dsp.ppg import PpgHrTracker, ppg_hr_motion, ppg_peaks, ppg_rate
from edge.dsp.qrs import ecg_peaks
from edge.evaluate.ppg import evaluate_ppg_hr, load_spc, reference_path

FS = 125.0


def _bidmc(data_dir):
    d = np.genfromtxt(data_dir / "bidmc" / "bidmc_01_Signals.csv", delimiter=",",
                      skip_header=1)
    return d[:, 2], d[:, 5]  # PLETH, lead II


def test_ppg_peaks_at_rest_match_the_ecg_beat_count_and_rate(data_dir):
    pleth, ecg = _bidmc(data_dir)
    pk, r = ppg_peaks(pleth, FS), ecg_peaks(ecg, FS)
    assert abs(len(pk) - len(r)) <= 0.02 * len(r)  # measured: 720 vs 730 over 8 min
    errs = []
    for s in range(0, pleth.size - 30 * 125, 15 * 125):
        sel = slice(s, s + 30 * 125)
        a = ppg_rate(pk[(pk >= sel.start) & (pk < sel.stop)], FS)
        b = ppg_rate(r[(r >= sel.start) & (r < sel.stop)], FS)
        errs.append(abs(a - b))
    assert np.mean(errs) < 0.5  # measured 0.16 bpm


def test_ppg_rate_needs_two_peaks():
    assert ppg_rate(np.array([10]), FS) is None
    assert ppg_rate(np.array([0, 125, 250]), FS) == pytest.approx(60.0)


def test_a_synthetic_pulse_is_tracked_at_its_rate_without_accelerometer():
    t = np.arange(0, 60, 1 / FS)
    x = np.sin(2 * np.pi * 1.5 * t) + 0.3 * np.sin(2 * np.pi * 3.0 * t)
    est = ppg_hr_motion(x[None, :], None, FS)
    assert len(est) == (t.size - 1000) // 250 + 1
    assert all(abs(e.bpm - 90.0) < 2.0 for e in est)
    assert min(e.quality for e in est) > 0.5


def test_the_tracker_emits_every_window_once_with_lag_and_flush():
    tr = PpgHrTracker(FS)
    spec = np.exp(-0.5 * ((tr.bpm - 80.0) / 2.0) ** 2)
    out = []
    for _ in range(12):
        out += tr.push(spec, spec)
    out += tr.flush()
    assert [e.window for e in out] == list(range(12))


def test_spc_loader_accepts_recordings_with_or_without_the_ecg_row(data_dir, tmp_path):
    from scipy.io import loadmat, savemat

    src = data_dir / "ieee-spc2015" / "Training_data" / "DATA_03_TYPE02.mat"
    sig = loadmat(str(src))["sig"]
    p = tmp_path / "DATA_03_TYPE02.mat"
    savemat(str(p), {"sig": sig[1:]})  # 5 rows: no ECG
    ppg5, acc5 = load_spc(p)
    ppg6, acc6 = load_spc(src)
    assert np.array_equal(ppg5, ppg6) and np.array_equal(acc5, acc6)
    assert reference_path(src).name == "DATA_03_TYPE02_BPMtrace.mat"
    extra = data_dir / "ieee-spc2015" / "Extra_TrainingData" / "DATA_S04_T01.mat"
    assert reference_path(extra).name == "BPM_S04_T01.mat"


@pytest.mark.parametrize("record,mae", [("DATA_03_TYPE02", 1.163), ("DATA_10_TYPE02", 3.988)])
def test_motion_heart_rate_mae_on_spc2015(data_dir, record, mae):
    """Measured with the tuned defaults (lag 5); record 10 is the hardest of the set."""
    p = data_dir / "ieee-spc2015" / "Training_data" / f"{record}.mat"
    r = evaluate_ppg_hr([p])
    assert r["total"]["mae_bpm"] <= mae + 0.3


@pytest.mark.slow
def test_motion_heart_rate_mae_over_all_13_spc2015_recordings(data_dir):
    d = data_dir / "ieee-spc2015"
    paths = sorted((d / "Training_data").glob("DATA_??_TYPE0?.mat"))
    paths.append(d / "Extra_TrainingData" / "DATA_S04_T01.mat")
    r = evaluate_ppg_hr(paths)
    assert r["total"]["records"] == 13
    assert r["total"]["mae_bpm"] <= 2.2  # measured 2.089 (tuned); LOO 3.361
    assert max(row["mae_bpm"] for row in r["records"]) <= 4.3


def test_the_streaming_processor_in_the_pipeline_matches_the_offline_estimate(data_dir):
    import asyncio

    from edge.clock import VirtualClock
    from edge.config import EdgeConfig
    from edge.detect.vitals import PpgHeartRateProcessor
    from edge.evaluate.ppg import load_reference
    from edge.pipeline import Pipeline
    from edge.sources.replay import RecordingSource
    from edge.trace.recordings import Recording
    from edge.types import ChannelSpec, VitalKind, VitalSample

    p = data_dir / "ieee-spc2015" / "Training_data" / "DATA_03_TYPE02.mat"
    ppg, acc = load_spc(p)
    names = ("PPG1", "PPG2", "ACC_X", "ACC_Y", "ACC_Z")
    rec = Recording("spc03", FS, tuple(ChannelSpec(n, "") for n in names),
                    np.vstack([ppg, acc]).T.astype(np.float32))
    got: list[VitalSample] = []

    class Sink:
        async def handle(self, item):
            if isinstance(item, VitalSample):
                got.append(item)

        async def close(self):
            return None

    cfg = EdgeConfig()
    src = RecordingSource(rec, stream="ppg", clock=VirtualClock(946684800.0))
    pipe = Pipeline(lambda ctx: [PpgHeartRateProcessor(ctx, cfg.ppg)], [Sink()], cfg.pipeline,
                    src.clock)
    asyncio.run(pipe.run(src))
    ref = load_reference(reference_path(p))
    assert len(got) == ref.size and all(s.kind is VitalKind.PULSE_RATE for s in got)
    mae = float(np.mean(np.abs(np.array([s.value for s in got]) - ref)))
    assert mae <= 1.4  # measured 1.16, as offline
