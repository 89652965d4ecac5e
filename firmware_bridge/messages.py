"""One dataclass per message type, each with ``encode_payload()`` / ``decode_payload()``.

The header fields (``seq``, ``timestamp_us``, ``flags``, ``version``) live on the
common base class so that a decoded message is self-contained; framing.py puts
them into the 16-byte header. Layouts are byte-exact as in PROTOCOL.md, all
little-endian; reserved bytes are written as 0 and ignored when read.

Decoding is strict (the exact payload length, counts that add up, known sample
formats): a malformed payload of a known type raises :class:`PayloadError`,
which the streaming decoder counts as ``payload_errors``. Encoding validates
ranges and raises :class:`PayloadError` too, so a bad value never reaches the wire.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np

from .constants import (
    INVALID_INT16,
    INVALID_INT24,
    MAX_PAYLOAD_SIZE,
    PROTOCOL_VERSION,
    MsgType,
    SampleFormat,
)
from .errors import PayloadError

__all__ = [
    "MESSAGE_TYPES",
    "Ack",
    "Channel",
    "Hello",
    "Log",
    "Message",
    "Nack",
    "Samples",
    "Status",
    "Stream",
    "TimeSyncRequest",
    "TimeSyncResponse",
    "Vital",
    "Vitals",
    "Welcome",
]

MAX_TEXT = 32  # bytes of a channel name or unit in HELLO
MAX_LOG_TEXT = 255


def _pack(fmt: str, *values: Any) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except (struct.error, OverflowError, TypeError) as exc:
        raise PayloadError(f"value out of range for layout {fmt!r}") from exc


def _unpack(fmt: str, payload: memoryview, offset: int = 0) -> tuple[Any, ...]:
    try:
        return struct.unpack_from(fmt, payload, offset)
    except struct.error as exc:
        raise PayloadError("payload shorter than its layout") from exc


def _exact(payload: memoryview, size: int, what: str) -> None:
    if len(payload) != size:
        raise PayloadError(f"{what} payload is {len(payload)} bytes, expected {size}")


def _f32_finite(value: float) -> bool:
    return math.isfinite(value)


@dataclass(frozen=True, kw_only=True)
class Message:
    """Header fields shared by every message (see PROTOCOL.md "Header").

    ``seq`` is the sender's u32 frame counter, ``timestamp_us`` the sender's u64
    monotonic clock in microseconds when the frame was built.
    """

    TYPE: ClassVar[MsgType]

    seq: int = 0
    timestamp_us: int = 0
    flags: int = 0
    version: int = PROTOCOL_VERSION

    def encode_payload(self) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:  # pragma: no cover
        raise NotImplementedError


# --------------------------------------------------------------------------- HELLO


@dataclass(frozen=True)
class Channel:
    """One channel of a stream: physical value = raw * scale + offset, in ``unit`` (UCUM)."""

    name: str
    unit: str
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class Stream:
    """A group of channels sampled together at one rate and packed in one SAMPLES frame."""

    stream_id: int
    sample_format: int
    sample_rate_hz: float
    channels: tuple[Channel, ...]


_HELLO_FIXED = struct.Struct("<QBBHBBBx")  # 16 bytes
_STREAM_FIXED = struct.Struct("<BBBxf")  # 8 bytes
_CHANNEL_FIXED = struct.Struct("<ff")  # 8 bytes, then name and unit (u8 length + bytes)


def _text_bytes(text: str, codec: str, what: str) -> bytes:
    try:
        raw = text.encode(codec)
    except UnicodeEncodeError as exc:
        raise PayloadError(f"{what} is not {codec}") from exc
    if len(raw) > MAX_TEXT:
        raise PayloadError(f"{what} is {len(raw)} bytes, at most {MAX_TEXT}")
    return bytes([len(raw)]) + raw


def _read_text(payload: memoryview, pos: int, codec: str, what: str) -> tuple[str, int]:
    if pos >= len(payload):
        raise PayloadError(f"HELLO ends before a {what}")
    n = payload[pos]
    end = pos + 1 + n
    if n > MAX_TEXT or end > len(payload):
        raise PayloadError(f"HELLO {what} length {n} is invalid")
    try:
        return bytes(payload[pos + 1 : end]).decode(codec), end
    except UnicodeDecodeError as exc:
        raise PayloadError(f"HELLO {what} is not {codec}") from exc


def _check_stream(stream: Stream) -> None:
    if stream.sample_format not in (SampleFormat.INT16, SampleFormat.INT24):
        raise PayloadError(f"unknown sample format {stream.sample_format}")
    if not 1 <= len(stream.channels) <= 255:
        raise PayloadError("a stream has 1..255 channels")
    if not (_f32_finite(stream.sample_rate_hz) and stream.sample_rate_hz > 0):
        raise PayloadError("sample rate must be finite and > 0")
    for ch in stream.channels:
        if not (_f32_finite(ch.scale) and _f32_finite(ch.offset)):
            raise PayloadError("channel scale and offset must be finite")


@dataclass(frozen=True, kw_only=True)
class Hello(Message):
    """Device introduction: identity, firmware, supported protocol versions, channel table."""

    TYPE: ClassVar[MsgType] = MsgType.HELLO

    device_id: int
    fw_version: tuple[int, int, int]
    proto_min: int
    proto_max: int
    streams: tuple[Stream, ...] = ()

    def encode_payload(self) -> bytes:
        if len(self.streams) > 255:
            raise PayloadError("at most 255 streams")
        ids = [s.stream_id for s in self.streams]
        if len(set(ids)) != len(ids):
            raise PayloadError("stream ids must be unique")
        major, minor, patch = self.fw_version
        parts = [
            _pack(
                "<QBBHBBBx",
                self.device_id, major, minor, patch,
                self.proto_min, self.proto_max, len(self.streams),
            )
        ]
        for s in self.streams:
            _check_stream(s)
            parts.append(
                _pack("<BBBxf", s.stream_id, s.sample_format, len(s.channels), s.sample_rate_hz)
            )
            for ch in s.channels:
                parts.append(_pack("<ff", ch.scale, ch.offset))
                parts.append(_text_bytes(ch.name, "utf-8", "channel name"))
                parts.append(_text_bytes(ch.unit, "ascii", "unit"))
        return b"".join(parts)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        dev, major, minor, patch, pmin, pmax, n_streams = _unpack("<QBBHBBBx", payload)
        pos = _HELLO_FIXED.size
        streams = []
        for _ in range(n_streams):
            sid, fmt, nch, rate = _unpack("<BBBxf", payload, pos)
            pos += _STREAM_FIXED.size
            channels = []
            for _ in range(nch):
                scale, offset = _unpack("<ff", payload, pos)
                name, pos = _read_text(payload, pos + _CHANNEL_FIXED.size, "utf-8", "name")
                unit, pos = _read_text(payload, pos, "ascii", "unit")
                channels.append(Channel(name, unit, scale, offset))
            stream = Stream(sid, fmt, rate, tuple(channels))
            _check_stream(stream)
            streams.append(stream)
        if pos != len(payload):
            raise PayloadError(f"HELLO has {len(payload) - pos} trailing bytes")
        if len({s.stream_id for s in streams}) != len(streams):
            raise PayloadError("HELLO stream ids are not unique")
        return cls(
            device_id=dev, fw_version=(major, minor, patch), proto_min=pmin, proto_max=pmax,
            streams=tuple(streams), **header,
        )


@dataclass(frozen=True, kw_only=True)
class Welcome(Message):
    """Gateway's answer to HELLO: the protocol version both sides use from now on."""

    TYPE: ClassVar[MsgType] = MsgType.WELCOME

    chosen_version: int
    result: int = 0
    gateway_time_us: int = 0

    def encode_payload(self) -> bytes:
        return _pack("<BBxxQ", self.chosen_version, self.result, self.gateway_time_us)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        _exact(payload, 12, "WELCOME")
        chosen, result, gw_time = _unpack("<BBxxQ", payload)
        return cls(chosen_version=chosen, result=result, gateway_time_us=gw_time, **header)


# ------------------------------------------------------------------------- SAMPLES

_SAMPLES_FIXED = struct.Struct("<QBBBxH")  # 14 bytes
_SAMPLE_LIMITS = {
    SampleFormat.INT16: (INVALID_INT16, 0x7FFF),
    SampleFormat.INT24: (INVALID_INT24, 0x7FFFFF),
}


def unpack_int24(raw: bytes | memoryview, count: int, offset: int = 0) -> np.ndarray:
    """Sign-extend ``count`` packed little-endian int24 values to an int32 array.

    Each value is copied into the top three bytes of an int32; an arithmetic
    shift right by 8 then sign-extends - three vectorised steps, no Python loop.
    """
    src = np.frombuffer(raw, dtype=np.uint8, count=3 * count, offset=offset).reshape(count, 3)
    wide = np.zeros((count, 4), dtype=np.uint8)
    wide[:, 1:] = src
    return wide.view("<i4").reshape(count) >> 8


def pack_int24(values: np.ndarray) -> bytes:
    """Pack int32 values (already range-checked) as little-endian int24."""
    wide = np.ascontiguousarray(values, dtype="<i4").reshape(-1)
    return wide.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


@dataclass(frozen=True, kw_only=True, eq=False)
class Samples(Message):
    """A block of interleaved samples of one stream.

    ``data`` has shape (n_samples, n_channels); decoded it is int16 for INT16
    (a read-only zero-copy view of the frame) and int32 for INT24. The
    invalid-sample code (INVALID_INT16 / INVALID_INT24) marks "no valid sample".
    """

    TYPE: ClassVar[MsgType] = MsgType.SAMPLES

    stream_id: int
    first_sample_index: int
    sample_format: int
    data: np.ndarray = field(repr=False)

    __hash__ = None  # type: ignore[assignment]  # holds an array

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Samples):
            return NotImplemented
        return (
            (self.seq, self.timestamp_us, self.flags, self.version)
            == (other.seq, other.timestamp_us, other.flags, other.version)
            and (self.stream_id, self.first_sample_index, self.sample_format)
            == (other.stream_id, other.first_sample_index, other.sample_format)
            and self.data.shape == other.data.shape
            and bool(np.array_equal(self.data, other.data))
        )

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[1])

    def encode_payload(self) -> bytes:
        limits = _SAMPLE_LIMITS.get(self.sample_format)  # type: ignore[call-overload]
        if limits is None:
            raise PayloadError(f"unknown sample format {self.sample_format}")
        data = np.asarray(self.data)
        if data.ndim != 2 or not 1 <= data.shape[1] <= 255 or not 1 <= data.shape[0] <= 0xFFFF:
            raise PayloadError("samples must be a 2-D array (1..65535 samples, 1..255 channels)")
        if not np.issubdtype(data.dtype, np.integer):
            raise PayloadError("samples must be integers")
        lo, hi = limits
        if int(data.min()) < lo or int(data.max()) > hi:
            raise PayloadError("sample value outside the sample format's range")
        head = _pack(
            "<QBBBxH", self.first_sample_index, self.stream_id, self.sample_format,
            data.shape[1], data.shape[0],
        )
        if self.sample_format == SampleFormat.INT16:
            body = np.ascontiguousarray(data, dtype="<i2").tobytes()
        else:
            body = pack_int24(data)
        return head + body

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        first, sid, fmt, nch, n = _unpack("<QBBBxH", payload)
        if fmt == SampleFormat.INT16:
            width = 2
        elif fmt == SampleFormat.INT24:
            width = 3
        else:
            raise PayloadError(f"unknown sample format {fmt}")
        if nch == 0 or n == 0:
            raise PayloadError("SAMPLES with zero channels or zero samples")
        count = n * nch
        _exact(payload, _SAMPLES_FIXED.size + count * width, "SAMPLES")
        if width == 2:
            flat = np.frombuffer(payload, dtype="<i2", count=count, offset=_SAMPLES_FIXED.size)
        else:
            flat = unpack_int24(payload, count, _SAMPLES_FIXED.size)
        return cls(
            stream_id=sid, first_sample_index=first, sample_format=fmt,
            data=flat.reshape(n, nch), **header,
        )


# -------------------------------------------------------------------------- VITALS


@dataclass(frozen=True)
class Vital:
    """One numeric measurement; ``value`` is float32 on the wire, NaN = not available."""

    kind: int
    value: float
    unit: int
    flags: int = 0


_VITAL = struct.Struct("<BBBxf")  # kind, unit, flags, reserved, value
MAX_VITALS = (MAX_PAYLOAD_SIZE - 4) // _VITAL.size  # 125


@dataclass(frozen=True, kw_only=True)
class Vitals(Message):
    """A list of numeric measurements taken at the header's timestamp."""

    TYPE: ClassVar[MsgType] = MsgType.VITALS

    items: tuple[Vital, ...] = ()

    def encode_payload(self) -> bytes:
        if len(self.items) > MAX_VITALS:
            raise PayloadError(f"at most {MAX_VITALS} vitals per frame")
        parts = [_pack("<Bxxx", len(self.items))]
        parts += [_pack("<BBBxf", v.kind, v.unit, v.flags, v.value) for v in self.items]
        return b"".join(parts)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        (count,) = _unpack("<Bxxx", payload)
        _exact(payload, 4 + count * _VITAL.size, "VITALS")
        items = tuple(
            Vital(kind, value, unit, flags)
            for kind, unit, flags, value in _VITAL.iter_unpack(payload[4:])
        )
        return cls(items=items, **header)


# -------------------------------------------------------------------------- STATUS


@dataclass(frozen=True, kw_only=True)
class Status(Message):
    """Device health: battery (0..100 %, 255 = unknown), sensor contact, error bits."""

    TYPE: ClassVar[MsgType] = MsgType.STATUS
    BATTERY_UNKNOWN: ClassVar[int] = 255

    battery_percent: int
    contact: int = 0
    battery_mv: int = 0
    error_flags: int = 0

    def _check(self) -> None:
        if not (0 <= self.battery_percent <= 100 or self.battery_percent == 255):
            raise PayloadError("battery_percent must be 0..100 or 255 (unknown)")

    def encode_payload(self) -> bytes:
        self._check()
        return _pack(
            "<BBHI", self.battery_percent, self.contact, self.battery_mv, self.error_flags
        )

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        _exact(payload, 8, "STATUS")
        batt, contact, mv, errors = _unpack("<BBHI", payload)
        msg = cls(battery_percent=batt, contact=contact, battery_mv=mv, error_flags=errors,
                  **header)
        msg._check()
        return msg


# ----------------------------------------------------------------------- TIME SYNC


@dataclass(frozen=True, kw_only=True)
class TimeSyncRequest(Message):
    """NTP-style probe: ``t1`` is the requester's clock (us) when sending."""

    TYPE: ClassVar[MsgType] = MsgType.TIME_SYNC_REQ

    t1: int

    def encode_payload(self) -> bytes:
        return _pack("<Q", self.t1)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        _exact(payload, 8, "TIME_SYNC_REQ")
        return cls(t1=_unpack("<Q", payload)[0], **header)


@dataclass(frozen=True, kw_only=True)
class TimeSyncResponse(Message):
    """Answer to a probe: ``t1`` echoed, ``t2``/``t3`` the responder's receive/send times."""

    TYPE: ClassVar[MsgType] = MsgType.TIME_SYNC_RESP

    t1: int
    t2: int
    t3: int

    def offset_delay(self, t4: int) -> tuple[float, int]:
        """(responder clock - requester clock, round-trip delay), both in us.

        ``t4`` is the requester's clock when this response arrived. The offset
        is exact when the two legs take equal time; its error is at most delay/2.
        """
        offset = ((self.t2 - self.t1) + (self.t3 - t4)) / 2
        delay = (t4 - self.t1) - (self.t3 - self.t2)
        return offset, delay

    def encode_payload(self) -> bytes:
        return _pack("<QQQ", self.t1, self.t2, self.t3)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        _exact(payload, 24, "TIME_SYNC_RESP")
        t1, t2, t3 = _unpack("<QQQ", payload)
        return cls(t1=t1, t2=t2, t3=t3, **header)


# ------------------------------------------------------------------------ ACK/NACK


@dataclass(frozen=True, kw_only=True)
class _AckBase(Message):
    acked_seq: int
    acked_type: int
    reason: int = 0

    def encode_payload(self) -> bytes:
        return _pack("<IBBxx", self.acked_seq, self.acked_type, self.reason)

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        _exact(payload, 8, cls.TYPE.name)
        seq, mtype, reason = _unpack("<IBBxx", payload)
        return cls(acked_seq=seq, acked_type=mtype, reason=reason, **header)


@dataclass(frozen=True, kw_only=True)
class Ack(_AckBase):
    """The frame ``acked_seq`` of type ``acked_type`` was received and accepted."""

    TYPE: ClassVar[MsgType] = MsgType.ACK


@dataclass(frozen=True, kw_only=True)
class Nack(_AckBase):
    """The frame ``acked_seq`` was received but refused; ``reason`` is a NackReason."""

    TYPE: ClassVar[MsgType] = MsgType.NACK


# ----------------------------------------------------------------------------- LOG


@dataclass(frozen=True, kw_only=True)
class Log(Message):
    """A short diagnostic line. Firmware must never put patient data in it."""

    TYPE: ClassVar[MsgType] = MsgType.LOG

    level: int
    text: str

    def encode_payload(self) -> bytes:
        try:
            raw = self.text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError("LOG text is not encodable as UTF-8") from exc
        if len(raw) > MAX_LOG_TEXT:
            raise PayloadError(f"LOG text is {len(raw)} bytes, at most {MAX_LOG_TEXT}")
        return _pack("<BB", self.level, len(raw)) + raw

    @classmethod
    def decode_payload(cls, payload: memoryview, **header: int) -> Self:
        level, n = _unpack("<BB", payload)
        _exact(payload, 2 + n, "LOG")
        # Invalid UTF-8 is replaced, not refused: a garbled log line is still worth keeping.
        text = bytes(payload[2:]).decode("utf-8", errors="replace")
        return cls(level=level, text=text, **header)


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello, Welcome, Samples, Vitals, Status, TimeSyncRequest, TimeSyncResponse,
        Ack, Nack, Log,
    )
}
