"""Device clock offset and drift are recovered from noisy, bursty arrivals."""

import numpy as np
import pytest

from edge.clock import DeviceClockEstimator


@pytest.mark.parametrize("drift_ppm,offset", [(0.0, 5.0), (40.0, -12.5), (-150.0, 1000.0)])
def test_offset_and_drift_are_estimated_despite_delay_jitter(drift_ppm, offset):
    rng = np.random.default_rng(7)
    est = DeviceClockEstimator(window_s=3600, bucket_s=10)
    for k in range(3600 * 4):  # 4 packets per second for an hour
        device_t = k * 0.25
        delay = 0.02 + rng.exponential(0.05)  # transport delay: positive, long-tailed
        if k % 40 == 0:
            delay += 2.0  # bursts: a buffer released late
        est.observe(device_t, device_t * (1 + drift_ppm * 1e-6) + offset + delay)
    fit = est.fit()
    assert fit is not None
    assert fit.drift_ppm == pytest.approx(drift_ppm, abs=5)
    assert fit.to_gateway(1800.0) == pytest.approx(1800 * (1 + drift_ppm * 1e-6) + offset + 0.02,
                                                   abs=0.02)


def test_no_estimate_before_any_observation():
    assert DeviceClockEstimator().fit() is None
