"""Respiration rate: counting and spectral estimates fused by agreement."""

from __future__ import annotations

import numpy as np

from edge.dsp.resp import resp_rate


def test_a_clean_sinusoidal_breath_is_counted_at_its_rate_with_full_quality():
    fs = 25.0
    t = np.arange(0, 32, 1 / fs)
    est = resp_rate(np.sin(2 * np.pi * (15 / 60) * t), fs)
    assert abs(est.rate - 15.0) < 1.0 and est.quality == 1.0


def test_disagreeing_count_and_spectrum_give_zero_quality():
    fs = 25.0
    t = np.arange(0, 32, 1 / fs)
    # a strong 30/min ripple on 12/min breaths: the count sees 24, the spectrum 12
    est = resp_rate(np.sin(2 * np.pi * 12 / 60 * t) + 0.5 * np.sin(2 * np.pi * 30 / 60 * t), fs)
    assert est.count_rate is not None and est.spectral_rate is not None
    assert abs(est.count_rate - est.spectral_rate) > 9 and est.quality == 0.0


def test_bidmc_respiration_rate_is_plausible_and_self_consistent(data_dir):
    d = np.genfromtxt(data_dir / "bidmc" / "bidmc_01_Signals.csv", delimiter=",",
                      skip_header=1)
    fs = 125.0
    ests = [resp_rate(d[s:s + 32 * 125, 1], fs) for s in range(0, d.shape[0] - 32 * 125, 625)]
    rates = np.array([e.rate for e in ests])
    # no breath-by-breath reference ships with the excerpt: check range and agreement only
    assert np.all((rates > 10) & (rates < 35))
    assert np.mean([e.quality for e in ests]) > 0.85  # measured 0.96
