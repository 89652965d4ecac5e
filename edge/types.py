"""Core value types that flow through the pipeline.

Everything a source yields is one of :class:`Block` (a run of waveform
samples), :class:`VitalSample` (a numeric measurement the device computed) or
:class:`Gap` (samples that were expected and never arrived). Processors turn
those into :class:`Beat`, :class:`VitalSample` and :class:`Episode` objects.

Two clocks are kept apart on purpose:

* ``device_time``: seconds on the wearable's own clock (what it stamped, or
  ``sample_index / fs`` when it stamps nothing). Detection uses sample indices
  and device time only, so replay is deterministic.
* ``arrival``: seconds on the gateway's monotonic clock when the data arrived
  (a virtual clock during replay). Used for latency, link supervision and to
  estimate the device clock's offset and drift (:mod:`edge.clock`).

Wall-clock times that leave the device (episodes) are UTC epoch seconds.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: importing the types never loads numpy
    import numpy as np


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel of a stream: its name (``"ECG"``, ``"PLETH"``) and unit (UCUM)."""

    name: str
    unit: str


@dataclass(frozen=True, slots=True)
class StreamKey:
    """Identifies a stream: which device, and which of its streams."""

    device: str
    stream: str

    def __str__(self) -> str:
        return f"{self.device}/{self.stream}"


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    """A contiguous run of samples of one stream.

    ``data`` has shape ``(n_samples, n_channels)`` in physical units
    (float32). ``first_index`` counts samples since the stream started, so two
    blocks are contiguous exactly when ``next.first_index == prev.end_index``;
    ``seq`` is the transport's sequence number (a skipped one means a lost
    block even where the sample counter cannot tell).
    """

    key: StreamKey
    channels: tuple[ChannelSpec, ...]
    fs: float
    seq: int
    first_index: int
    device_time: float
    arrival: float
    data: np.ndarray

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.channels):
            raise ValueError(
                f"block data shape {self.data.shape} does not match {len(self.channels)} channels"
            )
        if self.fs <= 0:
            raise ValueError(f"sample rate must be positive, got {self.fs}")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def end_index(self) -> int:
        """Index one past the last sample of this block."""
        return self.first_index + self.n_samples

    @property
    def duration(self) -> float:
        return self.n_samples / self.fs

    def channel(self, name: str) -> np.ndarray:
        for i, spec in enumerate(self.channels):
            if spec.name == name:
                return self.data[:, i]
        raise KeyError(f"stream {self.key} has no channel {name!r}")


class GapReason(enum.StrEnum):
    SEQUENCE = "sequence"  # a transport sequence number was skipped
    DISCONNECT = "disconnect"  # the link dropped
    OVERFLOW = "overflow"  # the gateway had to drop data (bounded queue full)
    CORRUPT = "corrupt"  # data arrived (or was recorded) but could not be decoded
    INVALID = "invalid"  # the device marked samples as invalid


@dataclass(frozen=True, slots=True)
class Gap:
    """Samples ``[start_index, end_index)`` of a stream that will never arrive.

    ``end_index`` may be ``None`` when a link dropped and the extent is not
    known yet (a disconnect); processors treat it as "reset your state".
    """

    key: StreamKey
    start_index: int
    end_index: int | None
    reason: GapReason
    arrival: float
    fs: float | None = None

    @property
    def n_missing(self) -> int | None:
        return None if self.end_index is None else self.end_index - self.start_index


class VitalKind(enum.StrEnum):
    """Numeric vital signs, with their canonical UCUM unit in :data:`VITAL_UNITS`."""

    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    RESP_RATE = "resp_rate"
    TEMPERATURE = "temperature"
    SYSTOLIC_BP = "systolic_bp"
    DIASTOLIC_BP = "diastolic_bp"
    MEAN_BP = "mean_bp"
    PULSE_RATE = "pulse_rate"


VITAL_UNITS: dict[VitalKind, str] = {
    VitalKind.HEART_RATE: "/min",
    VitalKind.PULSE_RATE: "/min",
    VitalKind.SPO2: "%",
    VitalKind.RESP_RATE: "/min",
    VitalKind.TEMPERATURE: "Cel",
    VitalKind.SYSTOLIC_BP: "mm[Hg]",
    VitalKind.DIASTOLIC_BP: "mm[Hg]",
    VitalKind.MEAN_BP: "mm[Hg]",
}


@dataclass(frozen=True, slots=True)
class VitalSample:
    """A numeric measurement at one instant, with its unit and a quality index in [0, 1]."""

    key: StreamKey
    kind: VitalKind
    value: float
    unit: str
    device_time: float
    arrival: float
    quality: float = 1.0
    source: str = "device"  # "device" or the processor that derived it


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected heartbeat (QRS complex) at ``index`` samples into the stream."""

    key: StreamKey
    index: int
    fs: float
    device_time: float
    label: str = "Q"  # AAMI class when known (N, S, V, F), else Q (unclassified)
    confidence: float = 1.0


class Priority(enum.StrEnum):
    """Alarm priority (IEC 60601-1-8 high / medium / low)."""

    URGENT = "urgent"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class VitalSummary:
    """Min, max and mean of the vital an episode is about, over the episode."""

    kind: VitalKind
    unit: str
    minimum: float
    maximum: float
    mean: float


def new_event_id() -> str:
    """A stable, globally unique event identifier (a UUID4 string)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Episode:
    """A summarized clinical event: what leaves the device.

    ``onset`` and ``offset`` are UTC epoch seconds; ``onset_index`` and
    ``offset_index`` are the sample positions in the stream that produced it
    (for evaluation and evidence snippets). ``detector`` names the rule or
    model and ``detector_version`` its version, so every stored event says
    which logic produced it.

    Urgent conditions are raised at onset with ``status="ongoing"`` and sent
    again under the same ``id`` with ``status="ended"`` when they end, so the
    store and the backend update one event instead of collecting two.
    """

    kind: str
    key: StreamKey
    onset: float
    offset: float
    onset_index: int
    offset_index: int
    priority: Priority
    detector: str
    detector_version: str
    confidence: float = 1.0
    summary: VitalSummary | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "ended"  # "ongoing" when raised at onset; the same id is re-sent when it ends
    id: str = field(default_factory=new_event_id)

    @property
    def duration(self) -> float:
        return self.offset - self.onset

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready representation (the outbox payload)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "device": self.key.device,
            "stream": self.key.stream,
            "onset": self.onset,
            "offset": self.offset,
            "duration_s": round(self.duration, 3),
            "onset_index": self.onset_index,
            "offset_index": self.offset_index,
            "priority": self.priority.value,
            "detector": self.detector,
            "detector_version": self.detector_version,
            "confidence": self.confidence,
            "details": dict(self.details),
            "status": self.status,
        }
        if self.summary is not None:
            out["summary"] = {
                "vital": self.summary.kind.value,
                "unit": self.summary.unit,
                "min": self.summary.minimum,
                "max": self.summary.maximum,
                "mean": self.summary.mean,
            }
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        summary = None
        if d.get("summary"):
            s = d["summary"]
            summary = VitalSummary(
                kind=VitalKind(s["vital"]),
                unit=s["unit"],
                minimum=s["min"],
                maximum=s["max"],
                mean=s["mean"],
            )
        return cls(
            kind=d["kind"],
            key=StreamKey(d["device"], d["stream"]),
            onset=d["onset"],
            offset=d["offset"],
            onset_index=d["onset_index"],
            offset_index=d["offset_index"],
            priority=Priority(d["priority"]),
            detector=d["detector"],
            detector_version=d["detector_version"],
            confidence=d.get("confidence", 1.0),
            summary=summary,
            details=d.get("details", {}),
            status=d.get("status", "ended"),
            id=d["id"],
        )


#: Everything a source can yield.
SourceItem = Block | VitalSample | Gap
