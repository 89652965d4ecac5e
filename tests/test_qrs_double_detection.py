"""Specification: every cardiac cycle is counted once (issue #13 item 4).

Tall T waves and wide QRS complexes never count twice, and true short-coupled
PVCs (R-on-T, couplets, VT runs) are never dropped to achieve that.

* PhysioNet/CinC 2015 ICU record v102s (a VT alarm the bedside monitor raised
  falsely): the detector takes the sharp noisy QRS, the tall rounded T wave
  about 0.25 s after it and, in some cycles, the P wave instead of the QRS.
  The number of cardiac cycles is derived independently of the ECG, from the
  record's photoplethysmogram (one pulse upstroke per cycle). Not met today:
  a strict xfail, so that the fix flips it (docs/detection-changes.md,
  2026-12-05).
* MIT-BIH DS1 203, 205, 215 (the DS1 records with V beats coupled under
  400 ms): the reference V beats with a short coupling interval are detected.
  Bounds are fractions of the reference counts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edge.dsp import ecg_peaks
from edge.evaluate.beats import match_pairs, reference_beats

wfdb = pytest.importorskip("wfdb")
signal = pytest.importorskip("scipy.signal")


def _record(data_dir: Path, rel: str) -> Path:
    base = data_dir / rel
    if not base.with_suffix(".hea").exists():
        pytest.skip(f"record {rel} not found under {data_dir}")
    return base


def pleth_cycles(pleth: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the pulse upstrokes of a photoplethysmogram.

    v102s's PLETH channel is a sawtooth: every pulse ends in one sharp fall
    (more than half the channel's range within one sample). At most one per
    0.3 s (200 bpm); NaN samples never count.
    """
    d = np.diff(np.nan_to_num(pleth, nan=np.nanmedian(pleth)))
    span = float(np.nanpercentile(pleth, 99) - np.nanpercentile(pleth, 1))
    falls, _ = signal.find_peaks(-d, height=0.5 * span, distance=int(0.3 * fs))
    return falls


@pytest.mark.xfail(strict=True, reason="issue #13 item 4: v102s is double-detected "
                   "(about 1.8 detections per cycle); see docs/detection-changes.md")
def test_v102s_cardiac_cycles_are_counted_once(data_dir):
    rec = wfdb.rdrecord(str(_record(data_dir, "physionet-icu-samples/v102s")))
    fs = float(rec.fs)
    names = list(rec.sig_name)
    ecg = rec.p_signal[:, names.index("II")]
    cycles = pleth_cycles(rec.p_signal[:, names.index("PLETH")], fs)
    minutes = len(ecg) / fs / 60.0
    # The independent reference itself is plausible: a regular 90-120 bpm rhythm.
    rate = len(cycles) / minutes
    assert 90.0 <= rate <= 120.0
    assert float(np.median(np.diff(cycles))) / fs == pytest.approx(60.0 / rate, rel=0.1)
    beats = ecg_peaks(ecg, fs)
    # One detection per cycle, within 5 % of the pulse count (pulses lost in NaN
    # stretches of the PLETH, cycles at the record's edges).
    assert len(beats) == pytest.approx(len(cycles), rel=0.05)
    # ... and never two detections closer than a third of the median cycle.
    assert float(np.min(np.diff(beats))) >= float(np.median(np.diff(cycles))) / 3


#: DS1 records that hold reference V beats coupled under 400 ms (VT runs, AF with
#: PVCs): 203 (AF, flutter, multiform PVCs, VT), 205 (VT runs), 215 (couplets, VT).
SHORT_COUPLED_RECORDS = ("203", "205", "215")
SHORT_COUPLING_S = 0.400


def test_short_coupled_pvcs_are_kept(data_dir):
    total, found = 0, 0
    for name in SHORT_COUPLED_RECORDS:
        base = _record(data_dir, f"mitdb-ds1/{name}")
        rec = wfdb.rdrecord(str(base))
        ann = wfdb.rdann(str(base), "atr")
        fs = float(rec.fs)
        ref = reference_beats(SimpleNamespace(sample=ann.sample, symbol=ann.symbol))
        symbol = dict(zip(np.asarray(ann.sample).tolist(), ann.symbol, strict=True))
        coupling = np.r_[np.inf, np.diff(ref) / fs]
        short_v = np.array([symbol[int(s)] == "V" for s in ref]) & (coupling < SHORT_COUPLING_S)
        beats = ecg_peaks(rec.p_signal[:, 0], fs)
        matched, _ = match_pairs(ref, beats, fs, 0.150)
        hit = np.zeros(len(ref), dtype=bool)
        hit[matched] = True
        n, k = int(short_v.sum()), int(hit[short_v].sum())
        assert n > 0, name
        # every record on its own keeps at least 95 % of its short-coupled V beats
        assert k >= 0.95 * n, (name, k, n)
        total, found = total + n, found + k
    assert found >= 0.97 * total, (found, total)
