"""Vital-sign rules and derived vitals (pipeline steps).

Rules (:class:`VitalRules`), on :class:`~edge.types.VitalSample` streams, with
:mod:`edge.detect.alarms` for minimum duration, hysteresis, re-alert merging,
quality gating and priorities:

* ``desaturation``: SpO2 below the limit of the patient's NEWS2 scale for the
  minimum duration (Scale 1: alarm < 90 %, urgent < 85 %; Scale 2 (target
  88-92 %): alarm < 86 %, urgent < 80 %). O'Driscoll BR et al., *BTS guideline
  for oxygen use in adults*, Thorax 2017;72(Suppl 1) (targets 94-98 % and
  88-92 %); RCP NEWS2 2017 Chart 1 (Scale 2).
* ``desaturation_relative`` (info): SpO2 at least 3 points below the patient's
  learned baseline median for 10 s (AASM Scoring Manual v2.0, 2012: 3 %
  desaturation, 10 s minimum event). Only once the baseline is learned.
* ``fever`` (>= 38.0 C) and ``hypothermia`` (< 35.0 C): O'Grady NP et al., Crit
  Care Med 2008;36:1330; Brown DJA et al., NEJM 2012;367:1930; NEWS2 bands.
* ``tachypnoea`` (>= 25/min) and ``bradypnoea`` (<= 8/min): the NEWS2 bands
  that score 3 (RCP 2017 Chart 1).

Derived vitals, on waveform streams:

* :class:`PpgHeartRateProcessor`: pulse rate from PPG (+ accelerometer when the
  stream has it) with a spectral quality index (:mod:`edge.dsp.ppg`).
* :class:`RespRateProcessor`: respiration rate from a respiration waveform with
  an agreement quality index (:mod:`edge.dsp.resp`).

Every threshold comes from :class:`~edge.config.VitalRulesConfig` (with the
patient's overrides applied by :func:`edge.config.config_for_patient`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edge.config import PatientConfig, PpgConfig, RespConfig, VitalRulesConfig
from edge.detect.alarms import AlarmPolicy, AlarmState, Observation
from edge.detect.baseline import BaselineTracker
from edge.dsp.ppg import PpgHrTracker, ppg_clean, ppg_spectra
from edge.dsp.resp import resp_rate
from edge.pipeline import Item, Output, StreamContext
from edge.types import VITAL_UNITS, Gap, Priority, VitalKind, VitalSample
from edge.windowing import Window

PPG_CHANNELS = ("PPG", "PPG1", "PPG2", "PLETH", "PLETH1", "PLETH2", "SPO2_PLETH")
ACC_CHANNELS = ("ACC_X", "ACC_Y", "ACC_Z", "AX", "AY", "AZ", "ACCX", "ACCY", "ACCZ")
RESP_CHANNELS = ("RESP", "RESPIRATION", "IMPEDANCE", "RESP_BELT")


def sample_wall(ctx: StreamContext, sample: VitalSample) -> float:
    """UTC time of a vital sample.

    Waveform streams map device time through the stream's clock fit
    (``ctx.wall``); a numeric-only stream has no blocks to anchor it, so its
    samples are placed by their gateway arrival time instead.
    """
    if ctx.anchored:
        return ctx.wall(sample.device_time * ctx.fs)
    return ctx.arrival_to_wall(sample.arrival)


def _observation(ctx: StreamContext, s: VitalSample) -> Observation:
    return Observation(t=s.device_time, index=int(round(s.device_time * ctx.fs)),
                       wall=sample_wall(ctx, s), value=s.value, quality=s.quality)


class VitalRules:
    """Desaturation, fever, hypothermia, tachypnoea and bradypnoea for one stream."""

    name = "vital_rules"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: VitalRulesConfig,
                 patient: PatientConfig | None = None,
                 baseline: BaselineTracker | None = None) -> None:
        self.ctx = ctx
        self.config = c = config
        self.patient = patient or PatientConfig()
        self.baseline = baseline
        scale2 = self.patient.spo2_scale == 2
        self.spo2_low = c.spo2_low_scale2_pct if scale2 else c.spo2_low_pct
        self.spo2_clear = c.spo2_low_scale2_clear_pct if scale2 else c.spo2_low_clear_pct
        self.spo2_urgent = c.spo2_urgent_scale2_pct if scale2 else c.spo2_urgent_pct

        def state(kind: str, prio: Priority, min_s: float, vital: VitalKind,
                  readings: int = 1) -> AlarmState:
            pol = AlarmPolicy(kind, prio, min_s, c.realert_s, readings, c.min_quality,
                              c.downgrade_quality)
            return AlarmState(pol, ctx.key, self.name, self.version, vital, VITAL_UNITS[vital])

        self.states: dict[str, AlarmState] = {
            "desaturation": state("desaturation", Priority.WARNING, c.desat_min_duration_s,
                                  VitalKind.SPO2),
            "desaturation_relative": state("desaturation_relative", Priority.INFO,
                                           c.desat_min_duration_s, VitalKind.SPO2),
            "fever": state("fever", Priority.WARNING, c.temperature_min_duration_s,
                           VitalKind.TEMPERATURE, c.temperature_min_readings),
            "hypothermia": state("hypothermia", Priority.WARNING,
                                 c.temperature_min_duration_s, VitalKind.TEMPERATURE,
                                 c.temperature_min_readings),
            "tachypnoea": state("tachypnoea", Priority.WARNING, c.resp_min_duration_s,
                                VitalKind.RESP_RATE),
            "bradypnoea": state("bradypnoea", Priority.WARNING, c.resp_min_duration_s,
                                VitalKind.RESP_RATE),
        }
        self._last: Observation | None = None

    def accepts(self, item: Item) -> bool:
        return (isinstance(item, VitalSample) and item.kind in (
            VitalKind.SPO2, VitalKind.TEMPERATURE, VitalKind.RESP_RATE)) or isinstance(item, Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            return self._end_all("signal gap")
        assert isinstance(item, VitalSample)
        if not self.accepts(item):
            return []
        obs = _observation(self.ctx, item)
        self._last = obs
        if item.kind is VitalKind.SPO2:
            return self._spo2(obs)
        if item.kind is VitalKind.TEMPERATURE:
            return self._temperature(obs)
        if item.kind is VitalKind.RESP_RATE:
            return self._resp(obs)
        return []

    def flush(self) -> Iterable[Output]:
        return self._end_all("end of stream")

    def _end_all(self, why: str) -> list[Output]:
        if self._last is None:
            return []
        out: list[Output] = []
        for st in self.states.values():
            out += st.end(self._last, why)
        return out

    def _spo2(self, obs: Observation) -> list[Output]:
        v = obs.value
        sev = Priority.URGENT if v < self.spo2_urgent else None
        scale = self.patient.spo2_scale
        out: list[Output] = list(self.states["desaturation"].update(
            obs, v < self.spo2_low, v >= self.spo2_clear, sev,
            {"limit_pct": self.spo2_low, "urgent_below_pct": self.spo2_urgent,
             "clear_at_pct": self.spo2_clear, "spo2_scale": scale,
             "scale_entered_at": self.patient.spo2_scale_entered_at or None}))
        base = self.baseline.stats(VitalKind.SPO2, obs.t) if self.baseline else None
        if base is not None:
            drop = base.median - v
            out += self.states["desaturation_relative"].update(
                obs, drop >= self.config.desat_drop_pct, drop < self.config.desat_drop_pct / 2,
                None, {"baseline_median_pct": round(base.median, 2),
                       "drop_threshold_pct": self.config.desat_drop_pct})
        return out

    def _temperature(self, obs: Observation) -> list[Output]:
        c, v = self.config, obs.value
        out: list[Output] = list(self.states["fever"].update(
            obs, v >= c.fever_c, v < c.fever_clear_c, None,
            {"limit_c": c.fever_c, "clear_below_c": c.fever_clear_c}))
        out += self.states["hypothermia"].update(
            obs, v < c.hypothermia_c, v > c.hypothermia_clear_c, None,
            {"limit_c": c.hypothermia_c, "clear_above_c": c.hypothermia_clear_c})
        return out

    def _resp(self, obs: Observation) -> list[Output]:
        c, v = self.config, obs.value
        out: list[Output] = list(self.states["tachypnoea"].update(
            obs, v >= c.tachypnoea_rpm, v < c.tachypnoea_clear_rpm, None,
            {"limit_rpm": c.tachypnoea_rpm, "clear_below_rpm": c.tachypnoea_clear_rpm}))
        out += self.states["bradypnoea"].update(
            obs, v <= c.bradypnoea_rpm, v >= c.bradypnoea_clear_rpm, None,
            {"limit_rpm": c.bradypnoea_rpm, "clear_at_rpm": c.bradypnoea_clear_rpm})
        return out


def _find(channels: Iterable[str], names: tuple[str, ...]) -> list[int]:
    upper = [c.upper() for c in channels]
    return [i for i, n in enumerate(upper) if n in names]


class _Ring:
    """The last ``n`` samples of a multichannel stream (contiguous; reset on gaps)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.buf: np.ndarray | None = None
        self.end_index = 0
        self.fill = 0

    def reset(self) -> None:
        self.buf = None
        self.fill = 0

    def push(self, w: Window, cols: list[int]) -> None:
        data = w.data[:, cols].astype(np.float64)
        if self.buf is None or self.end_index != w.start_index:
            self.buf = np.zeros((self.n, len(cols)))
            self.fill = 0
        k = min(data.shape[0], self.n)
        self.buf = np.roll(self.buf, -k, axis=0)
        self.buf[-k:] = data[-k:]
        self.fill = min(self.n, self.fill + data.shape[0])
        self.end_index = w.end_index

    @property
    def full(self) -> bool:
        return self.fill >= self.n


class PpgHeartRateProcessor:
    """Pulse rate from a PPG stream every ``step_s``, motion-aware when ACC channels exist.

    Emits :class:`VitalSample` (``pulse_rate``) with the spectral quality index
    as ``quality``; the value is decided ``lag_steps`` windows late (fixed-lag
    tracking) and stamped with the time of the window it describes.
    """

    name = "ppg_rate"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: PpgConfig,
                 channels: tuple[str, ...] = ()) -> None:
        self.ctx = ctx
        self.config = config
        self.win = int(round(config.window_s * ctx.fs))
        self.step = int(round(config.step_s * ctx.fs))
        self.tracker = PpgHrTracker(ctx.fs, config)
        self._ppg: list[int] | None = None
        self._acc: list[int] = []
        self._ring = _Ring(self.win)
        self._next_at: int | None = None
        self._window_end: dict[int, int] = {}  # tracker window number -> end sample index
        self._count = 0

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Gap)

    def _emit(self, estimates: list[Any]) -> list[Output]:
        out: list[Output] = []
        for e in estimates:
            end = self._window_end.pop(e.window, None)
            if end is None:
                continue
            t = end / self.ctx.fs
            out.append(VitalSample(self.ctx.key, VitalKind.PULSE_RATE, round(e.bpm, 1),
                                   VITAL_UNITS[VitalKind.PULSE_RATE], t, self.ctx.wall(end),
                                   quality=round(e.quality, 3), source=self.name))
        return out

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            out = self._emit(self.tracker.flush())
            self.tracker.reset()
            self._ring.reset()
            self._window_end.clear()
            self._count = 0
            self._next_at = None
            return out
        assert isinstance(item, Window)
        if self._ppg is None:
            names = [c.name for c in item.channels]
            self._ppg = _find(names, PPG_CHANNELS) or [0]
            self._acc = _find(names, ACC_CHANNELS)
        self._ring.push(item, self._ppg + self._acc)
        if self._next_at is None:
            self._next_at = item.start_index + self.win
        if not self._ring.full or self._ring.end_index < self._next_at:
            return []
        self._next_at = self._ring.end_index + self.step
        assert self._ring.buf is not None
        x = ppg_clean(self._ring.buf.T, self.ctx.fs, self.config)
        n_ppg = len(self._ppg)
        acc = x[n_ppg:] if self._acc else None
        _, clean, raw = ppg_spectra(x[:n_ppg], acc, self.ctx.fs, self.config)
        self._window_end[self._count] = self._ring.end_index
        self._count += 1
        return self._emit(self.tracker.push(clean, raw))

    def flush(self) -> Iterable[Output]:
        return self._emit(self.tracker.flush())


class RespRateProcessor:
    """Respiration rate from a respiration waveform every ``step_s`` (with quality)."""

    name = "resp_rate"
    version = "1.0.0"

    def __init__(self, ctx: StreamContext, config: RespConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._ring = _Ring(int(round(config.window_s * ctx.fs)))
        self._col: list[int] | None = None
        self._next_at: int | None = None
        self.step = int(round(config.step_s * ctx.fs))

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            self._ring.reset()
            self._next_at = None
            return []
        assert isinstance(item, Window)
        if self._col is None:
            self._col = _find([c.name for c in item.channels], RESP_CHANNELS)[:1] or [0]
        self._ring.push(item, self._col)
        if self._next_at is None:
            self._next_at = item.start_index + self._ring.n
        if not self._ring.full or self._ring.end_index < self._next_at:
            return []
        self._next_at = self._ring.end_index + self.step
        assert self._ring.buf is not None
        est = resp_rate(self._ring.buf[:, 0], self.ctx.fs, self.config)
        if est.rate is None:
            return []
        end = self._ring.end_index
        return [VitalSample(self.ctx.key, VitalKind.RESP_RATE, round(est.rate, 1),
                            VITAL_UNITS[VitalKind.RESP_RATE], end / self.ctx.fs,
                            self.ctx.wall(end), quality=round(est.quality, 3),
                            source=self.name)]

    def flush(self) -> Iterable[Output]:
        return []
