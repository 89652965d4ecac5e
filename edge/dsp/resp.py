"""Respiration rate from a respiration waveform (impedance, belt, or a derived signal).

Two estimates on the same window, fused by agreement:

* breath counting, "advanced counting" of Schäfer A, Kratky KW, *Estimation of
  breathing rate from respiratory sinus arrhythmia: comparison of various
  methods*, Ann Biomed Eng 2008;36(3):476-485: band-pass, take extrema, and
  count a breath for each peak-trough-peak cycle whose amplitude exceeds a
  fraction of the third quartile of all cycle amplitudes
  (:func:`resp_rate_count`);
* the dominant frequency of the band-passed signal (:func:`resp_rate_spectral`).

Quality is 1 when both agree within ``agreement_bpm`` and falls to 0 at three
times it: fusion by agreement, as recommended in the review of Charlton PH et
al., Physiol Meas 2016;37(4):610-626. The reported rate is the breath count
(robust to irregular breathing), or the mean of both when they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from edge.config import RespConfig

__all__ = ["resp_clean", "resp_rate_count", "resp_rate_spectral", "resp_rate", "RespEstimate"]


def resp_clean(x: np.ndarray, fs: float, config: RespConfig | None = None) -> np.ndarray:
    """Zero-phase band-pass to the respiration band (second-order Butterworth)."""
    c = config or RespConfig()
    sos = signal.butter(2, [c.band_low_hz, min(c.band_high_hz, 0.45 * fs)], btype="band",
                        fs=fs, output="sos")
    return signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64))


def resp_rate_count(clean: np.ndarray, fs: float, config: RespConfig | None = None,
                    ) -> float | None:
    """Breaths/min by advanced counting (Schäfer & Kratky 2008) on a band-passed window."""
    c = config or RespConfig()
    peaks = signal.argrelextrema(clean, np.greater)[0]
    troughs = signal.argrelextrema(clean, np.less)[0]
    if peaks.size < 2 or troughs.size < 1:
        return None
    # cycle amplitude: peak minus the deepest trough before the next peak
    amps, starts, ends = [], [], []
    for a, b in zip(peaks[:-1], peaks[1:], strict=True):
        tr = troughs[(troughs > a) & (troughs < b)]
        if tr.size:
            amps.append(min(clean[a], clean[b]) - clean[tr].min())
            starts.append(a)
            ends.append(b)
    if not amps:
        return None
    amps_a = np.asarray(amps)
    keep = amps_a >= c.count_threshold * np.percentile(amps_a, 75)
    if keep.sum() < 1:
        return None
    # merge rejected cycles into their neighbours: breaths = valid cycles
    valid_starts = np.asarray(starts)[keep]
    valid_ends = np.asarray(ends)[keep]
    span = (valid_ends[-1] - valid_starts[0]) / fs
    if span <= 0:
        return None
    return 60.0 * float(keep.sum()) / span


def resp_rate_spectral(clean: np.ndarray, fs: float, config: RespConfig | None = None,
                       ) -> tuple[float | None, float]:
    """(breaths/min at the spectral peak, share of band power within 2/min of it)."""
    c = config or RespConfig()
    n = clean.size
    nfft = int(2 ** np.ceil(np.log2(max(n, 8) * 4)))
    spec = np.abs(np.fft.rfft(clean * np.hanning(n), nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = (f >= c.band_low_hz) & (f <= c.band_high_hz)
    if not band.any() or spec[band].sum() <= 0:
        return None, 0.0
    fb, sb = f[band] * 60.0, spec[band]
    k = int(np.argmax(sb))
    share = float(sb[np.abs(fb - fb[k]) <= 2.0].sum() / sb.sum())
    return float(fb[k]), share


@dataclass(frozen=True)
class RespEstimate:
    rate: float | None
    quality: float
    count_rate: float | None
    spectral_rate: float | None


def resp_rate(x: np.ndarray, fs: float, config: RespConfig | None = None) -> RespEstimate:
    """Respiration rate (breaths/min) of one window, with a quality index in [0, 1]."""
    c = config or RespConfig()
    clean = resp_clean(x, fs, c)
    counted = resp_rate_count(clean, fs, c)
    spectral, _share = resp_rate_spectral(clean, fs, c)
    if counted is None:
        return RespEstimate(spectral, 0.0, None, spectral)
    if spectral is None:
        return RespEstimate(counted, 0.0, counted, None)
    diff = abs(counted - spectral)
    quality = float(np.clip(1.0 - (diff - c.agreement_bpm) / (2 * c.agreement_bpm), 0.0, 1.0))
    rate = (counted + spectral) / 2 if diff <= c.agreement_bpm else counted
    return RespEstimate(rate, quality, counted, spectral)
