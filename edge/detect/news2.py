"""NEWS2: the National Early Warning Score 2 of the Royal College of Physicians.

Source: Royal College of Physicians, *National Early Warning Score (NEWS) 2:
Standardising the assessment of acute-illness severity in the NHS*, updated
report of a working party, December 2017: Chart 1 (the scoring system) and
Chart 4 (clinical response to trigger thresholds). Restated for developers in
``shared/spec/news2.md``; its ten worked examples and boundary table are the
unit tests of this module.

The bands below are the definition of the score, not tunable thresholds: they
are fixed tables here (a config change must never silently produce a score
that is not NEWS2). What *is* configurable (:class:`~edge.config.News2Config`)
is how old an input may be, and the alarm priority of each escalation.

Rounding (decided before scoring, as news2.md section 1.9 asks): respiration
rate, SpO2, systolic BP and pulse are rounded half-up to an integer,
temperature half-up to 0.1 C, then looked up in the closed integer bands.

Inputs a wearable cannot give (air or oxygen, ACVPU, the SpO2 scale) come
from the clinician configuration (:class:`~edge.config.PatientConfig`), each
with the time it was entered; a score says how old each input is, lists the
missing and stale ones, and is only *complete* (a NEWS2) when none is missing.
A partial score is never given a risk band.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from edge.config import News2Config, PatientConfig, parse_entry_time
from edge.pipeline import Item, Output
from edge.types import Episode, Priority, VitalKind, VitalSample

PARAMETERS = ("respiration_rate", "spo2", "air_or_oxygen", "systolic_bp", "pulse",
              "consciousness", "temperature")

#: (upper bound inclusive, points), scanned in order; ``None`` = no upper bound.
_RR_BANDS = ((8, 3), (11, 1), (20, 0), (24, 2), (None, 3))
_SPO2_S1_BANDS = ((91, 3), (93, 2), (95, 1), (None, 0))
_SPO2_S2_LOW_BANDS = ((83, 3), (85, 2), (87, 1), (92, 0))  # >= 93 depends on air/oxygen
_SPO2_S2_O2_BANDS = ((94, 1), (96, 2), (None, 3))
_SBP_BANDS = ((90, 3), (100, 2), (110, 1), (219, 0), (None, 3))
_PULSE_BANDS = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (None, 3))
_TEMP_BANDS = ((Decimal("35.0"), 3), (Decimal("36.0"), 1), (Decimal("38.0"), 0),
               (Decimal("39.0"), 1), (None, 2))
_ACVPU = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}


class RiskBand(enum.IntEnum):
    """Clinical risk (RCP Chart 4), ordered so that a rise is ``new > old``."""

    LOW = 0
    LOW_MEDIUM = 1  # a single parameter scores 3, total < 5
    MEDIUM = 2  # total 5-6
    HIGH = 3  # total >= 7

    @property
    def label(self) -> str:
        return {0: "low", 1: "low-medium", 2: "medium", 3: "high"}[int(self)]


#: RCP Chart 4: minimum monitoring frequency and response, per trigger.
RESPONSE = {
    "zero": ("12-hourly", "continue routine NEWS monitoring"),
    RiskBand.LOW: ("4-6-hourly", "registered nurse assesses; decides whether to increase "
                   "monitoring or escalate (ward-based response)"),
    RiskBand.LOW_MEDIUM: ("1-hourly", "registered nurse informs the medical team, who review "
                          "and decide on escalation (urgent ward-based response)"),
    RiskBand.MEDIUM: ("1-hourly", "nurse informs the medical team immediately; urgent "
                      "assessment by a clinician with acute-illness competencies"),
    RiskBand.HIGH: ("continuous", "nurse informs the medical team immediately; emergency "
                    "assessment by a critical-care-competent team; consider HDU/ICU"),
}


def round_half_up(value: float, places: int = 0) -> Decimal:
    """``value`` rounded half-up (38.05 -> 38.1, 20.5 -> 21), via its shortest repr."""
    quantum = Decimal(1).scaleb(-places)
    return Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)


def _lookup(value: Decimal | int, bands: tuple[tuple[Any, int], ...]) -> int:
    for upper, points in bands:
        if upper is None or value <= upper:
            return points
    raise AssertionError("bands end with an open band")


def score_respiration_rate(rr: float) -> int:
    """RCP Chart 1: <=8: 3, 9-11: 1, 12-20: 0, 21-24: 2, >=25: 3."""
    return _lookup(int(round_half_up(rr)), _RR_BANDS)


def score_spo2(spo2: float, scale: int = 1, on_oxygen: bool | None = None) -> int | None:
    """SpO2 points on Scale 1 or 2; ``None`` when Scale 2 needs air/oxygen and it is unknown.

    Scale 2: 93 % or more scores only on supplemental oxygen (over-oxygenation of a
    hypercapnic patient); on air any value of 88 % or more scores 0.
    """
    s = int(round_half_up(spo2))
    if scale == 1:
        return _lookup(s, _SPO2_S1_BANDS)
    if scale != 2:
        raise ValueError(f"SpO2 scale must be 1 or 2, got {scale!r}")
    if s <= 92:
        return _lookup(s, _SPO2_S2_LOW_BANDS)
    if on_oxygen is None:
        return None
    return _lookup(s, _SPO2_S2_O2_BANDS) if on_oxygen else 0


def score_air_or_oxygen(on_oxygen: bool) -> int:
    """Air: 0; any supplemental oxygen: 2."""
    return 2 if on_oxygen else 0


def score_systolic_bp(sbp: float) -> int:
    """<=90: 3, 91-100: 2, 101-110: 1, 111-219: 0, >=220: 3."""
    return _lookup(int(round_half_up(sbp)), _SBP_BANDS)


def score_pulse(pulse: float) -> int:
    """<=40: 3, 41-50: 1, 51-90: 0, 91-110: 1, 111-130: 2, >=131: 3."""
    return _lookup(int(round_half_up(pulse)), _PULSE_BANDS)


def score_consciousness(acvpu: str) -> int:
    """Alert: 0; new Confusion, Voice, Pain or Unresponsive: 3."""
    try:
        return _ACVPU[acvpu.strip().upper()]
    except KeyError:
        raise ValueError(f"consciousness must be one of A C V P U, got {acvpu!r}") from None


def score_temperature(temp_c: float) -> int:
    """<=35.0: 3, 35.1-36.0: 1, 36.1-38.0: 0, 38.1-39.0: 1, >=39.1: 2 (one decimal)."""
    return _lookup(round_half_up(temp_c, 1), _TEMP_BANDS)


@dataclass(frozen=True)
class News2Result:
    """A NEWS2 score, complete or partial.

    ``total`` and ``band`` are set only when ``complete``; ``partial_total`` is
    the sum of the parameters that could be scored (never to be read as NEWS2).
    ``input_age_s`` gives the age of every input that has one; ``stale`` lists
    inputs present but too old to use (they are also in ``missing``).
    """

    points: dict[str, int]
    missing: tuple[str, ...]
    stale: tuple[str, ...] = ()
    scale: int = 1
    input_age_s: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def partial_total(self) -> int:
        return sum(self.points.values())

    @property
    def total(self) -> int | None:
        return self.partial_total if self.complete else None

    @property
    def red_score(self) -> bool:
        """A single parameter scores 3 (RCP: 'red score')."""
        return any(p == 3 for p in self.points.values())

    @property
    def band(self) -> RiskBand | None:
        total = self.total
        if total is None:
            return None
        if total >= 7:
            return RiskBand.HIGH
        if total >= 5:
            return RiskBand.MEDIUM
        if self.red_score:
            return RiskBand.LOW_MEDIUM
        return RiskBand.LOW

    @property
    def monitoring(self) -> str | None:
        band = self.band
        if band is None:
            return None
        return RESPONSE["zero" if self.total == 0 else band][0]

    @property
    def response(self) -> str | None:
        band = self.band
        if band is None:
            return None
        return RESPONSE["zero" if self.total == 0 else band][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete, "total": self.total, "partial_total": self.partial_total,
            "band": None if self.band is None else self.band.label,
            "red_score": self.red_score, "monitoring": self.monitoring,
            "points": dict(self.points), "missing": list(self.missing),
            "stale": list(self.stale), "spo2_scale": self.scale,
            "input_age_s": {k: round(v, 1) for k, v in self.input_age_s.items()},
            "inputs": dict(self.inputs),
        }


def news2_score(*, respiration_rate: float | None = None, spo2: float | None = None,
                on_oxygen: bool | None = None, systolic_bp: float | None = None,
                pulse: float | None = None, consciousness: str | None = None,
                temperature: float | None = None, spo2_scale: int = 1) -> News2Result:
    """Score one observation set (RCP 2017 Chart 1). ``None`` = not available.

    A missing parameter is never scored as 0: it is listed in ``missing`` and the
    result has no ``total`` and no ``band``.
    """
    points: dict[str, int] = {}
    missing: list[str] = []

    def put(name: str, value: Any, fn: Callable[[Any], int | None]) -> None:
        pts = None if value is None else fn(value)
        if pts is None:
            missing.append(name)
        else:
            points[name] = pts

    put("respiration_rate", respiration_rate, score_respiration_rate)
    put("spo2", spo2, lambda v: score_spo2(v, spo2_scale, on_oxygen))
    put("air_or_oxygen", on_oxygen, score_air_or_oxygen)
    put("systolic_bp", systolic_bp, score_systolic_bp)
    put("pulse", pulse, score_pulse)
    put("consciousness", consciousness or None, score_consciousness)
    put("temperature", temperature, score_temperature)
    inputs = {"respiration_rate": respiration_rate, "spo2": spo2, "on_oxygen": on_oxygen,
              "systolic_bp": systolic_bp, "pulse": pulse, "consciousness": consciousness,
              "temperature": temperature}
    return News2Result(points, tuple(missing), scale=spo2_scale,
                       inputs={k: v for k, v in inputs.items() if v is not None})


@dataclass
class _Latest:
    value: float
    wall: float
    quality: float
    source: str


_SENSOR_INPUT = {
    VitalKind.RESP_RATE: "respiration_rate",
    VitalKind.SPO2: "spo2",
    VitalKind.SYSTOLIC_BP: "systolic_bp",
    VitalKind.HEART_RATE: "pulse",
    VitalKind.PULSE_RATE: "pulse",
    VitalKind.TEMPERATURE: "temperature",
}


class News2Processor:
    """Keeps the latest value of each NEWS2 input for one patient and scores them.

    One instance per patient, placed in the processor list of *each* of the
    patient's streams (oximeter, ECG, thermometer...): it sees the vitals of all
    of them. A sensor value older than its ``max_age_*`` (config) is not used;
    clinician entries older than ``clinician_entry_max_age_s`` are stale. Time
    is the UTC time of the samples (``wall_of(sample)``), so replay is
    deterministic.

    Emits ``news2_escalation`` episodes: raised (``ongoing``) when the risk band
    of complete scores has stayed above low for ``confirm_s``; re-sent under the
    same id with a higher priority when it rises further (also after
    ``confirm_s``); ``ended`` when complete scores have been back to low for
    ``confirm_s``. Priorities per
    RCP Chart 4 from config (high: urgent). The latest result is in
    :attr:`latest` for summaries and the backend.
    """

    name = "news2"
    version = "1.0.0"

    def __init__(self, config: News2Config, patient: PatientConfig | None,
                 wall_of: Callable[[VitalSample], float], min_quality: float = 0.0,
                 pseudonym: str = "") -> None:
        self.config = config
        self.patient = patient or PatientConfig()
        self.pseudonym = pseudonym
        self.wall_of = wall_of
        self.min_quality = min_quality
        self.latest: News2Result | None = None
        self.results: list[tuple[float, News2Result]] = []  # (wall, result), last day at most
        self._vitals: dict[str, _Latest] = {}
        self._next_report: float | None = None
        self._episode: Episode | None = None
        self._pending: tuple[str, float] | None = None  # (direction, since when)
        self._peak: RiskBand = RiskBand.LOW
        self._flushed = False

    def accepts(self, item: Item) -> bool:
        return isinstance(item, VitalSample) and item.kind in _SENSOR_INPUT

    def _max_age(self, name: str) -> float:
        c = self.config
        return {"respiration_rate": c.max_age_resp_s, "spo2": c.max_age_spo2_s,
                "systolic_bp": c.max_age_sbp_s, "pulse": c.max_age_pulse_s,
                "temperature": c.max_age_temp_s}[name]

    def score_at(self, now: float) -> News2Result:
        """Score what is known at UTC ``now``: fresh sensor values and clinician entries."""
        ages: dict[str, float] = {}
        stale: list[str] = []
        values: dict[str, Any] = {}
        for name in ("respiration_rate", "spo2", "systolic_bp", "pulse", "temperature"):
            v = self._vitals.get(name)
            if v is None:
                continue
            ages[name] = now - v.wall
            if ages[name] > self._max_age(name):
                stale.append(name)
            else:
                values[name] = v.value
        p = self.patient
        entry_age = self.config.clinician_entry_max_age_s
        on_oxygen: bool | None = None
        if p.on_oxygen:
            t = parse_entry_time(p.on_oxygen_entered_at) if p.on_oxygen_entered_at else None
            if t is not None:
                ages["air_or_oxygen"] = now - t
            if t is None or now - t > entry_age:
                stale.append("air_or_oxygen")
            else:
                on_oxygen = p.on_oxygen == "oxygen"
        consciousness: str | None = None
        if p.consciousness:
            t = (parse_entry_time(p.consciousness_entered_at)
                 if p.consciousness_entered_at else None)
            if t is not None:
                ages["consciousness"] = now - t
            if t is None or now - t > entry_age:
                stale.append("consciousness")
            else:
                consciousness = p.consciousness
        if p.spo2_scale_entered_at:
            t = parse_entry_time(p.spo2_scale_entered_at)
            if t is not None:
                ages["spo2_scale"] = now - t
        result = news2_score(on_oxygen=on_oxygen, consciousness=consciousness,
                             spo2_scale=p.spo2_scale, **values)
        missing = list(result.missing)
        if not p.news2_eligible:
            missing.append("news2_eligible")  # clinician has not confirmed adult, not pregnant
        return replace(result, missing=tuple(missing), stale=tuple(stale), input_age_s=ages)

    def feed(self, item: Item) -> Iterable[Output]:
        assert isinstance(item, VitalSample)
        now = self.wall_of(item)
        if item.quality >= self.min_quality:
            self._vitals[_SENSOR_INPUT[item.kind]] = _Latest(item.value, now, item.quality,
                                                             item.source)
        result = self.score_at(now)
        self.latest = result
        if self._next_report is None or now >= self._next_report:
            self._next_report = now + self.config.report_every_s
            self.results.append((now, result))
            if len(self.results) > 1440:
                del self.results[:-1440]
        return self._escalation(result, item, now)

    def _priority(self, band: RiskBand) -> Priority:
        c = self.config
        return Priority({RiskBand.LOW_MEDIUM: c.priority_low_medium,
                         RiskBand.MEDIUM: c.priority_medium,
                         RiskBand.HIGH: c.priority_high}[band])

    def _escalation(self, result: News2Result, item: VitalSample, now: float) -> list[Output]:
        band = result.band
        if band is None:
            return []  # an incomplete score is no evidence either way
        ep = self._episode
        current = self._peak if ep is not None else RiskBand.LOW
        if band > current:
            direction = "up"
        elif band == RiskBand.LOW and ep is not None:
            direction = "down"
        else:
            self._pending = None
            return []
        if self._pending is None or self._pending[0] != direction:
            self._pending = (direction, now)
        if now - self._pending[1] < self.config.confirm_s:
            return []
        self._pending = None
        index = int(round(item.device_time))
        details = {"news2": result.to_dict(), "patient": self.pseudonym,
                   "entered_by": self.patient.entered_by}
        if ep is None:
            self._peak = band
            self._episode = Episode(
                kind="news2_escalation", key=item.key, onset=now, offset=now,
                onset_index=index, offset_index=index, priority=self._priority(band),
                detector=self.name, detector_version=self.version, status="ongoing",
                details={**details, "band": band.label, "from_band": "low"})
            return [self._episode]
        if direction == "down":
            final = replace(ep, offset=now, offset_index=index, status="ended",
                            details={**ep.details, "ended_by": "score back to low",
                                     "news2_at_end": result.to_dict()})
            self._episode = None
            return [final]
        self._peak = band
        self._episode = replace(ep, offset=now, offset_index=index,
                                priority=self._priority(band),
                                details={**ep.details, **details, "band": band.label,
                                         "escalated_to": band.label})
        return [self._episode]

    def flush(self) -> Iterable[Output]:
        if self._episode is None or self._flushed:
            return []
        self._flushed = True  # one instance may sit in several streams' lists
        ep = self._episode
        self._episode = None
        return [replace(ep, status="ended", details={**ep.details, "ended_by": "end of stream"})]

