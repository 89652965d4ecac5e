"""Streaming QRS detector for one ECG channel.

Algorithm
---------
The detector is the Pan-Tompkins / Hamilton-Tompkins family, implemented so
that it can be fed arbitrary chunks of a live stream:

1. **Feature signal** (Pan & Tompkins 1985, sec. II-A to II-E): band-pass
   5-15 Hz (Butterworth, designed from ``fs``), five-point derivative,
   rectification and moving-window integration.  Following Hamilton &
   Tompkins 1986 and Hamilton's open-source OSEA detector (``qrsdet2.c``,
   2002) the derivative is rectified with ``abs`` rather than squared and
   integrated over 80 ms, so the feature is *linear* in QRS amplitude: a beat
   whose amplitude drops by half still gives half the peak height, not a
   quarter, which keeps the adaptive threshold usable across amplitude
   changes.
2. **Peak candidates**: local maxima of the integrated signal that are the
   largest value within +/-195 ms ("pre-blanking": only one QRS complex can
   occur in any 200 ms window, OSEA ``PRE_BLANK``).  Peaks smaller than the
   response to a 0.05 mV QRS are ignored (OSEA ``MIN_PEAK_AMP`` uses 150 uV;
   lowered so that low-voltage leads are still detected), which keeps flat
   lines and asystole free of false beats.
3. **Adaptive threshold** (Hamilton & Tompkins 1986): ``DT = NPK + TH * (QPK -
   NPK)`` with ``QPK``/``NPK`` the mean of the last 8 QRS / noise peak heights
   and ``TH = 0.3125``.
4. **T-wave discrimination** (Pan & Tompkins 1985, sec. III-C): a peak within
   360 ms of the previous QRS whose maximal slope is less than half the slope
   of that QRS is a T wave.
5. **Irregular rhythm** (Pan & Tompkins 1985, sec. III-B): when any of the
   last 8 RR intervals lies outside 92-116 % of their mean, the threshold is
   halved.  Here the halved threshold only admits peaks whose slope passes
   the T-wave test (at least half the slope of the previous QRS), which keeps
   PVC couplets (MIT-BIH 208) without turning T and f waves of atrial
   fibrillation into beats.
6. **Search-back** (Pan & Tompkins 1985 sec. III-B; Hamilton & Tompkins 1986):
   if no QRS has been found 1.5 x the mean of the last 8 RR intervals after
   the last one, the largest noise peak that lies at least 360 ms after it and
   exceeds ``DT / 2`` is taken as a QRS.  Once that time has passed, any later
   peak above ``DT / 2`` is accepted straight away (as in OSEA).
7. **Re-learning** (OSEA ``qrsdet2.c``): if 8 s pass without a detection the
   QRS level is re-initialised from the per-second maxima of the last 8 s, so
   the detector recovers from a large artefact or a sudden amplitude drop.
   The absolute floor (step 2) still applies, so a flat line stays beat-free.
8. **Fiducial point**: the sample of largest absolute band-passed amplitude in
   the integration window, corrected for the band-pass group delay, then
   refined to the largest deviation of the raw signal from its local median
   within +/-80 ms (the MIT-BIH convention of labelling the major extremum).
   Every step uses ``abs``/``median`` of the signal, so the output is exactly
   invariant to signal polarity.

References
----------
* J. Pan, W. J. Tompkins, "A real-time QRS detection algorithm", IEEE Trans.
  Biomed. Eng. BME-32(3):230-236, 1985.
* P. S. Hamilton, W. J. Tompkins, "Quantitative investigation of QRS detection
  rules using the MIT/BIH arrhythmia database", IEEE Trans. Biomed. Eng.
  BME-33(12):1157-1165, 1986.
* P. S. Hamilton, "Open source ECG analysis", Computers in Cardiology
  29:101-104, 2002 (OSEA, ``qrsdet2.c``: TH = 0.3125 with mean estimators,
  195 ms pre-blanking, 360 ms search-back exclusion, 8 s threshold reset).

Streaming contract
------------------
Every decision is taken when the data it needs has arrived and never depends on
how the stream was cut into chunks, so ``process`` returns exactly the same
peaks for any chunking (float operations are done in the same order too; the
filters are ``scipy.signal.lfilter`` with carried ``zi`` state).

Decision latency (time from the R peak to the ``process`` call that returns it,
counted in stream time):

* normal detections: integration delay + 195 ms pre-blanking window, about
  0.3 s (median 0.28-0.30 s on MIT-BIH 100 and 208);
* search-back detections: at most ``searchback_max_s + peak_blanking_s -
  searchback_min_delay_s + integration_window_s`` (1.5 + 0.195 - 0.36 + 0.08,
  about 1.42 s);
* after start-up or ``reset()`` the first decisions wait for the
  ``learning_s`` (1.2 s) learning window: at most about 1.4 s.

Measured worst case on MIT-BIH 100 and 208: 1.27 s.  ``flush()`` decides the
peaks of the last ~0.2 s of a stream without waiting.

Missing samples (NaN) produce no feature (zero) and the filters restart from
the steady state of the first valid sample after the run, so a gap neither
creates a step artefact nor a beat.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal
from scipy.ndimage import maximum_filter1d

from edge.config import QrsConfig
from edge.errors import ConfigError

__all__ = ["QrsConfig", "QrsDetector", "ecg_peaks", "MIN_FS", "MAX_FS"]

MIN_FS = 100.0
"""Lowest sampling rate the detector is validated for (Hz)."""
MAX_FS = 1000.0
"""Highest sampling rate the detector is validated for (Hz)."""


@dataclass(slots=True)
class _Cand:
    """One peak candidate of the integrated signal."""

    c: int  # absolute index of the integrated-signal peak
    value: float  # peak height of the integrated signal
    slope: float  # max |derivative| of the band-passed signal in the window
    r: int  # absolute index of the fiducial point (R peak estimate)


_LEARN, _RUN = 0, 1


@lru_cache(maxsize=32)
def _bandpass_design(order: int, low_hz: float, high_hz: float,
                     fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Band-pass (b, a), its unit steady state and its group delay in samples at the
    band's geometric centre. Cached: the signal-quality step starts a detector per
    10 s window, and the design costs more than detecting the window's beats."""
    b, a = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs)
    zi_unit = signal.lfilter_zi(b, a)
    _, gd = signal.group_delay((b, a), w=[math.sqrt(low_hz * high_hz)], fs=fs)
    return b, a, zi_unit, int(round(float(gd[0])))


class QrsDetector:
    """Streaming QRS detector for one ECG channel.

    Feed contiguous chunks of one channel in mV with :meth:`process`; it returns
    the absolute sample indices of R peaks decided during that call.  See the
    module docstring for the algorithm (Pan & Tompkins 1985; Hamilton &
    Tompkins 1986; Hamilton 2002) and the decision latency (about 0.3 s for
    normal detections, at most about 1.45 s for search-back and start-up).
    """

    name = "qrs"
    version = "1.0.0"

    def __init__(self, fs: float, config: QrsConfig | None = None):
        try:
            fs = float(fs)
        except (TypeError, ValueError):
            raise ConfigError("fs must be a number") from None
        if not (MIN_FS <= fs <= MAX_FS):
            raise ConfigError(f"fs must be between {MIN_FS:g} and {MAX_FS:g} Hz")
        self.fs = fs
        self.config = cfg = config if config is not None else QrsConfig()
        cfg.validate()
        if cfg.bandpass_high_hz >= 0.45 * fs:
            raise ConfigError("QrsConfig.bandpass_high_hz is too close to fs / 2")

        # Filters, all designed from fs (once per design: see _bandpass_design).
        b, a, zi_unit, self._bp_delay = _bandpass_design(
            int(cfg.bandpass_order), float(cfg.bandpass_low_hz), float(cfg.bandpass_high_hz), fs)
        self._b_bp, self._a_bp, self._zi_bp_unit = b.copy(), a.copy(), zi_unit.copy()
        # Five-point derivative of Pan & Tompkins (sec. II-C), scaled to units/s.
        self._b_d = np.array([2.0, 1.0, 0.0, -1.0, -2.0]) * (fs / 8.0)
        self._n_int = max(1, int(round(cfg.integration_window_s * fs)))
        self._b_int = np.full(self._n_int, 1.0 / self._n_int)

        self._w_blank = max(1, int(round(cfg.peak_blanking_s * fs)))
        self._refractory = int(round(cfg.refractory_s * fs))
        self._sb_min = int(round(cfg.searchback_min_delay_s * fs))
        self._sb_max = int(round(cfg.searchback_max_s * fs))
        self._t_win = int(round(cfg.twave_window_s * fs))
        self._learn = max(1, int(round(cfg.learning_s * fs)))
        self._relearn = max(1, int(round(cfg.relearn_after_s * fs)))
        self._sec = max(1, int(round(fs)))
        self._init_rr = float(round(cfg.initial_rr_s * fs))
        self._hist_n = int(cfg.history_beats)
        # Region of the band-passed signal searched for the fiducial point,
        # relative to the integrated-signal peak.
        self._loc_back = self._n_int + 4
        self._fid_half = int(round(cfg.fiducial_search_s * fs))
        self._base_half = int(round(cfg.fiducial_baseline_s * fs))
        if self._base_half + self._fid_half >= self._w_blank + self._loc_back:
            raise ConfigError("QrsConfig.fiducial_* windows must end before the blanking window")
        self._keep = (
            self._w_blank + self._loc_back + self._bp_delay + self._fid_half + self._base_half + 8
        )
        self._floor = cfg.min_qrs_amplitude_mv * self._template_response()
        self.reset(0)

    # ------------------------------------------------------------------ API

    def reset(self, next_index: int) -> None:
        """Forget the signal history (filters and thresholds relearn) after a gap.

        The next sample fed to :meth:`process` has absolute index ``next_index``.
        Peaks still pending are discarded; call :meth:`flush` first to keep them.
        """
        next_index = int(next_index)
        self._origin = next_index
        self._n = next_index  # absolute index of the next sample to be fed
        self._zi_bp: np.ndarray | None = None  # None: restart at next valid sample
        self._zi_d = np.zeros(len(self._b_d) - 1)
        self._zi_int = np.zeros(self._n_int - 1)
        self._buf0 = next_index  # absolute index of _bp[0], _slope[0], _mwi[0]
        self._x = np.zeros(0)  # raw samples (NaN kept), for the fiducial point
        self._bp = np.zeros(0)
        self._slope = np.zeros(0)
        self._mwi = np.zeros(0)
        self._scan = next_index  # next absolute index to examine for a candidate
        self._cands: deque[_Cand] = deque()  # found, not yet classified
        self._hist: deque[tuple[int, float]] = deque()  # classified, last relearn window
        self._phase = _LEARN
        self._learn_end = next_index + self._learn
        n = self._hist_n
        self._qrs: deque[float] = deque(maxlen=n)
        self._noise: deque[float] = deque(maxlen=n)
        self._rr: deque[float] = deque(maxlen=n)
        self._last_c: int | None = None
        self._last_slope = 0.0
        self._last_ref = next_index
        self._sb_expired = False
        self._since_last: list[_Cand] = []  # noise peaks since the last QRS
        self._last_r = next_index - 1
        self._thr = 0.0
        self._thr_sb = 0.0
        self._irregular = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Feed the next contiguous chunk (1-D float, mV).

        Returns the absolute sample indices (int64, counted from the first sample
        fed, or from ``next_index`` of the last :meth:`reset`) of the R peaks
        confirmed during this call: strictly increasing, each reported once.
        NaN samples are treated as missing.  Latency: see the module docstring.
        """
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError("samples must be a 1-D array")
        if x.size:
            self._ingest(x)
        known_end = self._n - self._w_blank - 1
        self._find_candidates(known_end, final=False)
        return self._decide(known_end)

    def flush(self) -> np.ndarray:
        """End of stream: decide and return the peaks still pending.

        Afterwards the detector is reset to continue counting at the next index.
        """
        known_end = self._n - 1
        self._find_candidates(known_end, final=True)
        if self._phase == _LEARN and self._cands:
            # Stream shorter than the learning window: learn from what there is.
            self._learn_end = min(self._learn_end, known_end)
        out = self._decide(known_end)
        self.reset(self._n)
        return out

    # ------------------------------------------------------------ internals

    def _template_response(self) -> float:
        """Peak of the integrated feature for a 1 mV Gaussian QRS."""
        sigma = self.config.floor_template_sigma_s * self.fs
        half = int(math.ceil(6 * sigma))
        t = np.arange(-half, half + 1)
        x = np.concatenate([np.exp(-0.5 * (t / sigma) ** 2), np.zeros(int(self.fs))])
        bp = signal.lfilter(self._b_bp, self._a_bp, x)
        d = np.abs(signal.lfilter(self._b_d, [1.0], bp))
        return float(np.max(signal.lfilter(self._b_int, [1.0], d)))

    def _ingest(self, x: np.ndarray) -> None:
        """Filter a chunk, append the features to the buffers."""
        bp = np.zeros(x.size)
        slope = np.zeros(x.size)
        mwi = np.zeros(x.size)
        nan = np.isnan(x)
        if not nan.any():
            segments = [(0, x.size)]
        else:
            # Runs of valid samples.
            v = np.concatenate([[False], ~nan, [False]])
            edges = np.flatnonzero(v[1:] != v[:-1])
            segments = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
        for s, e in segments:
            seg = x[s:e]
            if self._zi_bp is None or s > 0:
                # Restart from the steady state of the first valid sample.
                self._zi_bp = self._zi_bp_unit * seg[0]
                self._zi_d = np.zeros_like(self._zi_d)
                self._zi_int = np.zeros_like(self._zi_int)
            y, self._zi_bp = signal.lfilter(self._b_bp, self._a_bp, seg, zi=self._zi_bp)
            d, self._zi_d = signal.lfilter(self._b_d, [1.0], y, zi=self._zi_d)
            ad = np.abs(d)
            m, self._zi_int = signal.lfilter(self._b_int, [1.0], ad, zi=self._zi_int)
            bp[s:e] = y
            slope[s:e] = ad
            mwi[s:e] = m
        if nan[-1]:
            self._zi_bp = None
        # Trim what no future decision needs, then append.
        cut = min(self._scan - self._keep, self._n) - self._buf0
        if cut > 0:
            self._x = self._x[cut:]
            self._bp = self._bp[cut:]
            self._slope = self._slope[cut:]
            self._mwi = self._mwi[cut:]
            self._buf0 += cut
        self._x = np.concatenate([self._x, x])
        self._bp = np.concatenate([self._bp, bp])
        self._slope = np.concatenate([self._slope, slope])
        self._mwi = np.concatenate([self._mwi, mwi])
        self._n += x.size

    def _find_candidates(self, known_end: int, final: bool) -> None:
        """Find integrated-signal peaks with index in [_scan, known_end]."""
        if known_end < self._scan:
            return
        w = self._w_blank
        lo = self._scan - w  # first index the window needs
        hi = known_end + w + 1 if not final else self._n  # exclusive
        a0 = max(lo, self._buf0)
        seg = self._mwi[a0 - self._buf0 : hi - self._buf0]
        pad_l = a0 - lo
        pad_r = (known_end + w + 1) - hi
        if pad_l or pad_r:
            seg = np.concatenate([np.full(pad_l, -np.inf), seg, np.full(pad_r, -np.inf)])
        mx = maximum_filter1d(seg, size=2 * w + 1, mode="constant", cval=-np.inf)
        core = seg[w:-w]
        prev = seg[w - 1 : -w - 1]
        ok = (core >= mx[w:-w]) & (core > prev) & (core >= self._floor) & (core > 0)
        idx = np.flatnonzero(ok) + self._scan
        for c in idx.tolist():
            self._cands.append(self._make_cand(int(c)))
        self._scan = known_end + 1

    def _make_cand(self, c: int) -> _Cand:
        b0, end = self._buf0, self._n
        lo = max(c - self._loc_back, b0)
        bp = self._bp[lo - b0 : c + 1 - b0]
        coarse = lo + int(np.argmax(np.abs(bp))) - self._bp_delay
        slope_lo = max(c - self._n_int + 1, b0)
        slope = float(np.max(self._slope[slope_lo - b0 : c + 1 - b0]))
        # Refine on the raw signal: largest deviation from the local baseline.
        r = coarse
        b_lo = max(coarse - self._base_half, b0)
        b_hi = min(coarse + self._base_half + 1, end)
        base_win = self._x[b_lo - b0 : b_hi - b0]
        f0 = max(coarse - self._fid_half, b0)
        win = self._x[f0 - b0 : min(coarse + self._fid_half + 1, end) - b0]
        ok = ~np.isnan(win)
        if ok.any():
            base = float(np.median(base_win[~np.isnan(base_win)]))
            dev = np.where(ok, np.abs(win - base), -1.0)
            r = f0 + int(np.argmax(dev))
        r = max(r, self._origin)
        return _Cand(c=c, value=float(self._mwi[c - b0]), slope=slope, r=r)

    # decision logic ----------------------------------------------------

    def _update_threshold(self) -> None:
        q = sum(self._qrs) / len(self._qrs) if self._qrs else 0.0
        nz = sum(self._noise) / len(self._noise) if self._noise else 0.0
        cfg = self.config
        self._thr = nz + cfg.threshold_coefficient * (q - nz)
        self._thr_sb = cfg.searchback_threshold_factor * self._thr
        self._irregular = False
        if self._rr:
            rr_avg = sum(self._rr) / len(self._rr)
            lo, hi = cfg.irregular_rr_low * rr_avg, cfg.irregular_rr_high * rr_avg
            self._irregular = any(not lo <= rr <= hi for rr in self._rr)

    def _init_levels(self, qrs_levels: list[float]) -> None:
        n = self._hist_n
        if len(qrs_levels) < n:
            qrs_levels = qrs_levels + [max(qrs_levels, default=0.0)] * (n - len(qrs_levels))
        self._qrs.clear()
        self._qrs.extend(qrs_levels[-n:])
        self._noise.clear()
        self._noise.extend([0.0] * n)
        self._rr.clear()
        self._rr.extend([self._init_rr] * n)
        self._last_c = None
        self._since_last = []
        self._sb_expired = False
        self._update_threshold()

    def _t_searchback(self) -> int | None:
        if self._last_c is None or self._sb_expired:
            return None
        rr = sum(self._rr) / len(self._rr)
        delay = min(int(self.config.searchback_rr_factor * rr), self._sb_max)
        return self._last_c + delay

    def _decide(self, known_end: int) -> np.ndarray:
        out: list[int] = []
        while True:
            if self._phase == _LEARN:
                if self._learn_end > known_end:
                    break
                vals = [k.value for k in self._cands if k.c <= self._learn_end]
                if not vals:
                    self._learn_end += self._learn
                    continue
                self._init_levels([max(vals)])
                self._last_ref = self._learn_end
                self._phase = _RUN
                continue
            nc = self._cands[0].c if self._cands else None
            t_sb = self._t_searchback()
            t_rl = self._last_ref + self._relearn
            timers = [t for t in (t_sb, t_rl) if t is not None]
            t_timer = min(timers)
            if nc is not None and nc <= t_timer:
                self._classify(self._cands.popleft(), out)
            elif t_timer <= known_end:
                if t_sb is not None and t_sb == t_timer:
                    self._searchback(t_sb, out)
                else:
                    self._relearn_levels(t_rl)
            else:
                break
        return np.asarray(out, dtype=np.int64)

    def _classify(self, k: _Cand, out: list[int]) -> None:
        self._hist.append((k.c, k.value))
        while self._hist and self._hist[0][0] <= k.c - self._relearn:
            self._hist.popleft()
        last = self._last_c
        if last is not None and k.c - last < self._refractory:
            return
        cfg = self.config
        steep = k.slope >= cfg.twave_slope_ratio * self._last_slope
        is_t = last is not None and k.c - last < self._t_win and not steep
        if not is_t and (
            k.value > self._thr
            or (
                # Irregular rhythm: lower threshold, but only for QRS-like slopes.
                self._irregular and steep and k.value > cfg.irregular_threshold_factor * self._thr
            )
        ):
            self._accept(k, out)
            return
        self._noise.append(k.value)
        self._update_threshold()
        self._since_last.append(k)
        if self._sb_expired and self._eligible(k):
            self._accept(k, out)

    def _eligible(self, k: _Cand) -> bool:
        return (
            self._last_c is not None
            and k.c - self._last_c >= self._sb_min
            and k.value > self._thr_sb
        )

    def _searchback(self, t_sb: int, out: list[int]) -> None:
        best: _Cand | None = None
        for k in self._since_last:
            if k.c <= t_sb and self._eligible(k) and (best is None or k.value > best.value):
                best = k
        if best is None:
            self._sb_expired = True
            return
        self._accept(best, out)

    def _accept(self, k: _Cand, out: list[int]) -> None:
        if self._last_c is not None:
            self._rr.append(float(k.c - self._last_c))
        self._qrs.append(k.value)
        self._update_threshold()
        self._last_c = k.c
        self._last_slope = k.slope
        self._last_ref = max(self._last_ref, k.c)
        self._sb_expired = False
        self._since_last = [s for s in self._since_last if s.c > k.c]
        if k.r > self._last_r:
            out.append(k.r)
            self._last_r = k.r

    def _relearn_levels(self, t: int) -> None:
        """No QRS for relearn_after_s: QRS level from per-second maxima (OSEA)."""
        start = t - self._relearn
        maxima = [0.0] * max(1, self._relearn // self._sec)
        for c, v in self._hist:
            if start < c <= t:
                i = min((c - start - 1) // self._sec, len(maxima) - 1)
                maxima[i] = max(maxima[i], v)
        self._init_levels(maxima)
        self._last_ref = t


def ecg_peaks(signal_mv: np.ndarray, fs: float, config: QrsConfig | None = None) -> np.ndarray:
    """Whole-record convenience: run the same streaming :class:`QrsDetector`.

    Returns the R-peak sample indices (int64, strictly increasing) of the whole
    array, identical to feeding it in any chunks and calling ``flush``.
    """
    det = QrsDetector(fs, config)
    a = det.process(np.asarray(signal_mv, dtype=np.float64))
    b = det.flush()
    return np.concatenate([a, b]).astype(np.int64)
