"""Model input features: the one implementation used by training and at run time.

Each feature set has a name and a version recorded in the model manifest
(``input.features``); a manifest naming a set this module does not implement
is refused (:class:`~edge.errors.ModelSpecError`), so a model can never be fed
inputs prepared differently from the ones it was trained on.

* ``af_rr_v2``: a window of :data:`AF_WINDOW_RR` consecutive RR intervals
  (seconds) -> the RR sequence normalised by its median plus robust
  irregularity statistics (Tateno & Glass 2001 use the RR-difference
  distribution; Sarkar et al. 2008 the successive-difference dispersion;
  RMSSD and pNN-type fractions as in Dash et al. 2009) and, new in v2, the
  statistics that tell AF from ectopy: sample entropy and COSEn (Lake &
  Moorman 2011: bigeminy and other repeating ectopy have low entropy however
  irregular they look) and the lag-1 autocorrelation of RR (alternating
  short-long ectopy is strongly negative, AF near zero).
* ``beat_v2``: a beat-centred ECG window, band-passed 0.5-40 Hz and
  resampled to :data:`BEAT_FS` Hz, minus the patient's running *normal*
  template (recent non-premature beats that match it) and scaled by the
  template's QRS amplitude; QRS / P / T correlation, energy, width and slope
  relative to the template; RR intervals relative to the patient's local and
  long running rhythm and the local rhythm's irregularity. No absolute shape
  or rate: those describe the patient more than the beat (de Chazal et al.
  2004 RR features; template matching as in Hamilton's OSEA beat classifier).
* ``quality_v1``: a :data:`QUALITY_WINDOW_S` s ECG window -> spectral and
  statistical signal-quality indices (Li, Mark & Clifford 2008: kSQI, sSQI,
  pSQI, basSQI; Clifford et al. 2012).

All functions are pure numpy/scipy on arrays; streaming state (the beat
template) lives in the small :class:`BeatFeatureExtractor` object.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import signal as sps

from edge.dsp.filters import butter_sos, zero_phase

# -- AF from RR intervals -------------------------------------------------------------------

AF_FEATURES = "af_rr_v2"
AF_WINDOW_RR = 32
#: Scalars appended to the normalised RR sequence, in this order.
AF_SCALARS = ("rmssd_n", "mad_d_n", "pnn50", "pdiff10", "cv", "rmssd_trim_n", "sd1_sd2",
              "turning_ratio", "hr_100", "sampen", "cosen_n", "ac1")
#: Sample-entropy tolerance (s), template length 1: Lake & Moorman 2011 (COSEn).
AF_SAMPEN_R_S = 0.030
AF_N_FEATURES = AF_WINDOW_RR + len(AF_SCALARS)


def af_features(rr_s: np.ndarray) -> np.ndarray:
    """Features of RR windows: ``rr_s`` (n, 32) or (32,) seconds -> (n, 41) float32.

    The first 32 values are ``RR / median(RR) - 1`` clipped to [-1, 2]; the
    rest are :data:`AF_SCALARS` (dimensionless or scaled to about unit range).
    """
    rr = np.atleast_2d(np.asarray(rr_s, dtype=np.float64))
    if rr.shape[1] != AF_WINDOW_RR:
        raise ValueError(f"af_features needs windows of {AF_WINDOW_RR} RR intervals, "
                         f"got {rr.shape[1]}")
    med = np.maximum(np.median(rr, axis=1, keepdims=True), 1e-3)
    r = rr / med
    seq = np.clip(r - 1.0, -1.0, 2.0)
    d = np.diff(rr, axis=1)
    dn = d / med
    absdn = np.abs(dn)
    rmssd_n = np.sqrt(np.mean(dn**2, axis=1))
    mad_d_n = np.median(absdn, axis=1)
    pnn50 = np.mean(np.abs(d) > 0.050, axis=1)
    pdiff10 = np.mean(absdn > 0.10, axis=1)
    cv = np.std(r, axis=1)
    # RMSSD without the 4 largest successive differences: isolated ectopic beats
    # (one short + one long RR) do not make a regular rhythm look irregular.
    trimmed = np.sort(absdn, axis=1)[:, :-4]
    rmssd_trim_n = np.sqrt(np.mean(trimmed**2, axis=1))
    sd1 = np.std(d, axis=1) / np.sqrt(2.0)
    sd2 = np.sqrt(np.maximum(2 * np.var(rr, axis=1) - sd1**2, 1e-12))
    sd1_sd2 = np.clip(sd1 / sd2, 0.0, 3.0)
    s = np.sign(d)
    turning_ratio = np.mean(s[:, 1:] * s[:, :-1] < 0, axis=1)
    hr_100 = 0.6 / med[:, 0]  # heart rate / 100 bpm
    sampen = _sample_entropy(rr, AF_SAMPEN_R_S)
    # COSEn = SampEn + ln(2r) - ln(mean RR) (Lake & Moorman 2011), shifted and scaled to
    # about unit range: ln(2 * 0.03) = -2.81.
    cosen_n = (sampen + np.log(2 * AF_SAMPEN_R_S) - np.log(np.mean(rr, axis=1)) + 4.0) / 4.0
    dev = rr - np.mean(rr, axis=1, keepdims=True)
    den = np.maximum(np.sum(dev**2, axis=1), 1e-12)
    ac1 = (np.sum(dev[:, 1:] * dev[:, :-1], axis=1) / den + 1.0) / 2.0  # [-1, 1] -> [0, 1]
    scalars = np.stack([rmssd_n, mad_d_n, pnn50, pdiff10, cv, rmssd_trim_n, sd1_sd2,
                        turning_ratio, hr_100, sampen / 4.0, cosen_n, ac1], axis=1)
    return np.concatenate([seq, np.clip(scalars, 0.0, 5.0)], axis=1).astype(np.float32)


def _sample_entropy(rr: np.ndarray, r: float) -> np.ndarray:
    """Sample entropy, template length 1, tolerance ``r`` seconds, of each row of ``rr``.

    ``-ln(A / B)``: B counts pairs of points within ``r``, A the pairs whose next
    points are also within ``r``; undefined ratios (no match) give the largest value
    a window of this length can show, ``ln(B_max)``.
    """
    x = rr[:, :-1]
    close = np.abs(x[:, :, None] - x[:, None, :]) <= r  # (n, N-1, N-1)
    nxt = np.abs(rr[:, 1:, None] - rr[:, None, 1:]) <= r
    iu = np.triu_indices(x.shape[1], k=1)
    b = close[:, iu[0], iu[1]].sum(axis=1).astype(np.float64)
    a = (close & nxt)[:, iu[0], iu[1]].sum(axis=1).astype(np.float64)
    cap = np.log(len(iu[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        se = -np.log(a / b)
    return np.where((a > 0) & (b > 0), np.minimum(se, cap), cap)


def rr_windows(beat_index: np.ndarray, fs: float, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of 32 RR intervals every ``hop`` beats of a beat sequence.

    Returns ``(rr_s (n, 32), last_beat_position (n,))`` where the window ending at
    position ``k`` uses beats ``k-32 .. k``.
    """
    idx = np.asarray(beat_index, dtype=np.int64)
    rr = np.diff(idx) / float(fs)
    ends = np.arange(AF_WINDOW_RR, len(idx), hop)
    if ends.size == 0:
        return np.zeros((0, AF_WINDOW_RR)), ends
    win = np.stack([rr[e - AF_WINDOW_RR:e] for e in ends])
    return win, ends


# -- beat classification --------------------------------------------------------------------

BEAT_FEATURES = "beat_v2"
BEAT_FS = 100.0
BEAT_PRE_S = 0.25
BEAT_POST_S = 0.45
BEAT_N = int(round((BEAT_PRE_S + BEAT_POST_S) * BEAT_FS))  # 70 samples
#: The band-pass runs on [beat - SEG_PRE_S, beat + SEG_POST_S] (zero phase), so
#: a beat can be classified once SEG_POST_S of signal after it has arrived.
SEG_PRE_S = 1.0
SEG_POST_S = 0.6
#: The post-RR (compensatory pause) feature is capped: a beat waits at most this
#: long for its successor, in training as at run time.
POST_RR_CAP_S = 1.2
#: Beats in the running normal template (about 10-15 s of rhythm).
TEMPLATE_BEATS = 12
#: RR intervals in the local (about 8 s) and the long (about 2 min) running rhythm.
RR_LOCAL_BEATS = 8
RR_LONG_BEATS = 128
#: A beat joins the normal template when it is not premature (its RR at least this
#: fraction of the local median RR) and its QRS correlates with the template at
#: DOMINANT_CORR or more; after RESEED_BEATS beats in a row rejected, the template
#: restarts from the most recent beats (the rhythm has changed).
DOMINANT_PRE_RR = 0.85
DOMINANT_CORR = 0.7
RESEED_BEATS = 8
#: The waveform difference to the template is decimated by this factor (35 samples at
#: 50 Hz).
BEAT_DECIM = 2
#: Parts of the waveform (samples at BEAT_FS, beat at BEAT_PRE_S): P wave region
#: (-250..-100 ms), QRS (+/-100 ms), T wave region (+150..+450 ms).
_C = int(round(BEAT_PRE_S * BEAT_FS))
P_PART = slice(0, _C - 10)
QRS_PART = slice(_C - 10, _C + 10)
T_PART = slice(_C + 15, BEAT_N)
BEAT_SCALARS = ("pre_local", "post_local", "pre_long", "post_pre", "local_long", "rr_irregular",
                "corr_qrs", "corr_all", "corr_p", "corr_t", "amp_ratio", "log_energy_qrs",
                "log_energy_p", "log_energy_t", "width_s", "width_ratio", "projection",
                "slope_ratio")
BEAT_N_WAVE = BEAT_N // BEAT_DECIM
BEAT_N_FEATURES = BEAT_N_WAVE + len(BEAT_SCALARS)
BEAT_CLASSES = ("N", "S", "V", "F")


def _bandpass(fs: float) -> np.ndarray:
    return butter_sos(2, (0.5, min(40.0, 0.45 * fs)), fs)


def beat_segment_bounds(index: int, fs: float) -> tuple[int, int]:
    """Sample range ``[start, end)`` of the raw signal a beat's waveform needs."""
    return index - int(round(SEG_PRE_S * fs)), index + int(round(SEG_POST_S * fs)) + 1


def beat_waveform(segment: np.ndarray, fs: float) -> np.ndarray:
    """The beat-centred waveform (mV, :data:`BEAT_N` samples at :data:`BEAT_FS` Hz).

    ``segment`` is the raw signal over :func:`beat_segment_bounds` (the beat is
    at offset ``round(SEG_PRE_S * fs)``).
    """
    x = np.asarray(segment, dtype=np.float64)
    y = zero_phase(_bandpass(float(fs)), x - np.median(x), padlen=min(len(x) - 1, 60))
    centre = round(SEG_PRE_S * fs)
    t = centre + (np.arange(BEAT_N) / BEAT_FS - BEAT_PRE_S) * fs
    w = np.interp(t, np.arange(len(y)), y)
    return w - np.median(w)


def _width(w: np.ndarray) -> float:
    """Samples where the waveform's slope exceeds a third of its maximum: a QRS width proxy."""
    slope = np.abs(np.diff(w))
    m = slope.max()
    return float(np.count_nonzero(slope > m / 3.0)) if m > 0 else 0.0


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    x = a - a.mean()
    y = b - b.mean()
    den = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y)) / den if den > 0 else 0.0


def _log_energy_ratio(a: np.ndarray, b: np.ndarray) -> float:
    ea = float(np.sum((a - a.mean()) ** 2))
    eb = float(np.sum((b - b.mean()) ** 2))
    return float(np.log((ea + 1e-6) / (eb + 1e-6)))


class BeatFeatureExtractor:
    """Per-stream state for ``beat_v2``: the patient's running rhythm and normal template.

    Every feature is relative to the patient's own recent beats, so that it
    carries from one patient to the next (de Chazal et al. 2004 RR features:
    pre-RR, post-RR, local and long average RR; morphology against the
    patient's dominant beat as in Hamilton's OSEA template matching). The
    normal template is the sample-wise median of the last
    :data:`TEMPLATE_BEATS` beats that were not premature and whose QRS matched
    it; it needs no label, so training and the live stream build it the same
    way. Feed beats in order with :meth:`features`; the state is updated after
    each beat, so a beat is compared with the beats *before* it.
    """

    def __init__(self) -> None:
        self._normal: deque[np.ndarray] = deque(maxlen=TEMPLATE_BEATS)
        self._recent: deque[np.ndarray] = deque(maxlen=RESEED_BEATS)
        self._rr_local: deque[float] = deque(maxlen=RR_LOCAL_BEATS)
        self._rr_long: deque[float] = deque(maxlen=RR_LONG_BEATS)
        self._rejected = 0

    def reset(self) -> None:
        self._normal.clear()
        self._recent.clear()
        self._rr_local.clear()
        self._rr_long.clear()
        self._rejected = 0

    def template(self) -> np.ndarray | None:
        """The current normal template (None before the first beat)."""
        beats = self._normal or self._recent
        return np.median(np.stack(beats), axis=0) if beats else None

    def features(self, waveform: np.ndarray, pre_rr_s: float | None,
                 post_rr_s: float | None) -> np.ndarray:
        """Feature vector (:data:`BEAT_N_FEATURES`,) of one beat; updates the state.

        ``pre_rr_s`` is None for the first beat after a reset; ``post_rr_s`` is
        the time to the next beat capped at :data:`POST_RR_CAP_S` (None: unknown).
        """
        w = np.asarray(waveform, dtype=np.float64)
        t = self.template()
        if t is None:
            t = w
        local = float(np.median(self._rr_local)) if self._rr_local else (pre_rr_s or 0.8)
        long = float(np.median(self._rr_long)) if self._rr_long else local
        pre = pre_rr_s if pre_rr_s is not None else local
        post = min(post_rr_s, POST_RR_CAP_S) if post_rr_s is not None else POST_RR_CAP_S
        wq, tq = w[QRS_PART], t[QRS_PART]
        scale = max(float(np.ptp(tq)), 0.05)
        corr_qrs = _corr(wq, tq)
        wt = _width(tq)
        ts = float(np.max(np.abs(np.diff(tq))))
        scalars = np.array([
            pre / local,
            post / local,
            pre / long,
            post / max(pre, 0.1),
            local / long,
            # irregularity of the local rhythm: prematurity means less in AF
            float(np.median(np.abs(np.diff(self._rr_local)))) / local
            if len(self._rr_local) > 2 else 0.0,
            corr_qrs,
            _corr(w, t),
            _corr(w[P_PART], t[P_PART]),
            _corr(w[T_PART], t[T_PART]),
            float(np.ptp(wq)) / scale,
            _log_energy_ratio(wq, tq),
            _log_energy_ratio(w[P_PART], t[P_PART]),
            _log_energy_ratio(w[T_PART], t[T_PART]),
            _width(wq) / BEAT_FS * 10.0,
            _width(wq) / wt if wt > 0 else 1.0,
            float(np.dot(wq, tq) / max(float(np.dot(tq, tq)), 1e-9)),
            float(np.max(np.abs(np.diff(wq)))) / ts if ts > 0 else 1.0,
        ])
        out = np.concatenate([(w - t)[::BEAT_DECIM] / scale, np.clip(scalars, -5.0, 5.0)])
        # -- state update (after the beat's own features) --
        dominant = pre_rr_s is None or pre_rr_s >= DOMINANT_PRE_RR * local
        if dominant and (not self._normal or corr_qrs >= DOMINANT_CORR):
            self._normal.append(w)
            self._rejected = 0
        else:
            self._rejected += 1
            if self._rejected >= RESEED_BEATS:
                self._normal.clear()
                self._normal.extend(self._recent)
                self._rejected = 0
        self._recent.append(w)
        if pre_rr_s is not None and 0.2 <= pre_rr_s <= 3.0:
            self._rr_local.append(pre_rr_s)
            self._rr_long.append(pre_rr_s)
        return np.clip(np.nan_to_num(out), -8.0, 8.0).astype(np.float32)


# -- signal quality -------------------------------------------------------------------------

QUALITY_FEATURES = "quality_v1"
QUALITY_WINDOW_S = 5.0
QUALITY_SCALARS = ("kurtosis_log", "skew", "psqi", "bas_sqi", "hf_ratio", "flat_frac",
                   "zcr", "ptp_log", "ac_peak")
QUALITY_N_FEATURES = len(QUALITY_SCALARS)


def quality_features(window_mv: np.ndarray, fs: float) -> np.ndarray:
    """Signal-quality indices of one ECG window (any rate >= 100 Hz) -> (9,) float32.

    kSQI (kurtosis), sSQI (skewness), pSQI (5-15 Hz / 5-40 Hz power), basSQI
    (1-40 Hz / 0-40 Hz power), high-frequency power ratio (> 40 Hz), fraction of
    flat samples, zero-crossing rate of the band-passed signal, log peak-to-peak
    amplitude and the highest autocorrelation at a plausible beat lag (0.3-2 s).
    """
    x = np.asarray(window_mv, dtype=np.float64)
    x = x - np.mean(x)
    f, p = sps.welch(x, fs=fs, nperseg=min(len(x), int(2 * fs)))
    def band(lo: float, hi: float) -> float:
        return float(np.sum(p[(f >= lo) & (f < hi)])) + 1e-12
    y = zero_phase(_bandpass(float(fs)), x)
    sd = np.std(y) + 1e-9
    z = (y - y.mean()) / sd
    kurt = float(np.mean(z**4))
    skew = float(np.mean(z**3))
    flat = float(np.mean(np.abs(np.diff(x)) < 1e-4))
    zcr = float(np.mean(np.signbit(y[1:]) != np.signbit(y[:-1]))) * fs / 100.0
    ac = np.correlate(z[: int(4 * fs)], z[: int(4 * fs)], mode="full")[int(4 * fs) - 1:]
    ac = ac / (ac[0] + 1e-9)
    lo_lag, hi_lag = int(0.3 * fs), min(int(2.0 * fs), len(ac) - 1)
    ac_peak = float(ac[lo_lag:hi_lag].max()) if hi_lag > lo_lag else 0.0
    out = np.array([
        np.log(max(kurt, 1e-3)),
        skew,
        band(5, 15) / band(5, 40),
        band(1, 40) / band(0, 40),
        band(40, fs / 2) / band(0, fs / 2) if fs > 80 else 0.0,
        flat,
        zcr,
        np.log(max(float(np.ptp(x)), 1e-3)),
        ac_peak,
    ])
    return np.clip(out, -10.0, 10.0).astype(np.float32)


def beat_feature_rows(signal_mv: np.ndarray, fs: float,
                      beat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``beat_v2`` features of every beat of a contiguous record, as the stream sees them.

    Applies the run-time rules of :class:`~edge.detect.beats.BeatClassifier`:
    beats without :data:`SEG_PRE_S` of signal before them or :data:`SEG_POST_S`
    after them are not classified (and do not update the template); the
    post-RR is the time to the next beat capped at :data:`POST_RR_CAP_S`.
    Returns ``(rows (n, BEAT_N_FEATURES), classified mask (n,))``.
    """
    x = np.asarray(signal_mv, dtype=np.float64)
    idx = np.asarray(beat_index, dtype=np.int64)
    ext = BeatFeatureExtractor()
    rows = np.zeros((len(idx), BEAT_N_FEATURES), dtype=np.float32)
    ok = np.zeros(len(idx), dtype=bool)
    prev: int | None = None
    for k, b in enumerate(idx.tolist()):
        lo, hi = beat_segment_bounds(b, fs)
        pre = None if prev is None else (b - prev) / fs
        prev = b
        if lo < 0 or hi > len(x):
            continue
        post = (idx[k + 1] - b) / fs if k + 1 < len(idx) else None
        if post is None or post > POST_RR_CAP_S:
            post = POST_RR_CAP_S
        rows[k] = ext.features(beat_waveform(x[lo:hi], fs), pre, post)
        ok[k] = True
    return rows, ok
