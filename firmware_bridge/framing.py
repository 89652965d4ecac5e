"""Frames on the wire: header + payload + CRC-32C, COBS-encoded, ended by 0x00.

``encode_frame`` builds one frame from a message; ``decode_frame`` takes one
frame (the bytes between two delimiters) apart and raises the precise
:class:`~firmware_bridge.errors.FrameError`; :class:`FrameDecoder` turns an
arbitrary byte stream into messages, never raises for any input, counts every
rejected frame in :class:`DecoderStats`, resynchronises at the next 0x00 and
holds at most one maximum-size encoded frame in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import asdict, dataclass

from . import cobs
from .constants import (
    CRC_SIZE,
    HEADER_SIZE,
    MAX_ENCODED_SIZE,
    MAX_FRAME_SIZE,
    MIN_FRAME_SIZE,
    SUPPORTED_VERSIONS,
    MsgType,
)
from .crc import crc32c
from .errors import (
    CobsError,
    CrcError,
    FrameTooLongError,
    FrameTooShortError,
    PayloadError,
    UnknownTypeError,
    VersionError,
)
from .messages import MESSAGE_TYPES, Message

__all__ = ["DecoderStats", "FrameDecoder", "decode_frame", "encode_frame"]

_HEADER = struct.Struct("<BBBxIQ")  # version, type, flags, reserved, seq, timestamp_us
_CRC = struct.Struct("<I")
# Their layout is frozen across protocol versions, so they are accepted at any version.
_VERSION_FREE = frozenset({MsgType.HELLO, MsgType.WELCOME})


def encode_frame(msg: Message) -> bytes:
    """Encode ``msg`` as one wire frame: COBS(header + payload + CRC) + b"\\x00".

    Raises PayloadError for a value that does not fit its field and
    FrameTooLongError if the frame would exceed MAX_FRAME_SIZE decoded bytes.
    """
    payload = msg.encode_payload()
    try:
        header = _HEADER.pack(msg.version, msg.TYPE, msg.flags, msg.seq, msg.timestamp_us)
    except struct.error as exc:
        raise PayloadError("header field out of range (version/flags u8, seq u32, ts u64)") from exc
    body = header + payload
    if len(body) + CRC_SIZE > MAX_FRAME_SIZE:
        raise FrameTooLongError(
            f"{msg.TYPE.name} frame would be {len(body) + CRC_SIZE} bytes, max {MAX_FRAME_SIZE}"
        )
    return cobs.encode(body + _CRC.pack(crc32c(body))) + b"\x00"


def decode_frame(
    encoded: bytes | bytearray | memoryview,
    supported_versions: Collection[int] = SUPPORTED_VERSIONS,
) -> Message:
    """Decode the COBS bytes of one frame (without the 0x00 delimiter).

    Checks in this order, raising the first failure: COBS (CobsError), size
    (FrameTooLongError, FrameTooShortError), CRC (CrcError), version
    (VersionError), type (UnknownTypeError), payload (PayloadError).
    """
    if len(encoded) > MAX_ENCODED_SIZE:
        raise FrameTooLongError(f"encoded frame longer than {MAX_ENCODED_SIZE} bytes")
    frame = cobs.decode(encoded, MAX_FRAME_SIZE)
    if len(frame) < MIN_FRAME_SIZE:
        raise FrameTooShortError(f"frame of {len(frame)} bytes, minimum {MIN_FRAME_SIZE}")
    view = memoryview(frame)
    (crc,) = _CRC.unpack_from(frame, len(frame) - CRC_SIZE)
    if crc32c(view[:-CRC_SIZE]) != crc:
        raise CrcError("CRC-32C mismatch")
    version, mtype, flags, seq, ts = _HEADER.unpack_from(frame)
    if version not in supported_versions and mtype not in _VERSION_FREE:
        raise VersionError(f"protocol version {version} not supported")
    cls = MESSAGE_TYPES.get(mtype)
    if cls is None:
        raise UnknownTypeError(f"unknown message type 0x{mtype:02X}")
    return cls.decode_payload(
        view[HEADER_SIZE:-CRC_SIZE], seq=seq, timestamp_us=ts, flags=flags, version=version
    )


@dataclass
class DecoderStats:
    """Counters of a FrameDecoder; each rejected frame increments exactly one error counter.

    ``unknown_type`` frames are valid frames of a newer peer: skipped, counted,
    not an error. ``bytes_discarded`` counts bytes (delimiters excluded) of
    rejected frames, including the whole run of an over-long one.
    """

    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    too_long: int = 0
    short_frames: int = 0
    unknown_type: int = 0
    bad_version: int = 0
    payload_errors: int = 0
    bytes_discarded: int = 0

    @property
    def errors(self) -> int:
        """Rejected frames of every kind (unknown types excluded: they are not errors)."""
        return (
            self.crc_errors + self.cobs_errors + self.too_long + self.short_frames
            + self.bad_version + self.payload_errors
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_COUNTER = {
    CrcError: "crc_errors",
    CobsError: "cobs_errors",
    FrameTooLongError: "too_long",
    FrameTooShortError: "short_frames",
    VersionError: "bad_version",
    PayloadError: "payload_errors",
}


class FrameDecoder:
    """Streaming decoder: ``feed(bytes)`` returns the messages completed by those bytes.

    ``feed`` never raises for any bytes-like input: every bad frame is counted in
    ``stats`` and dropped, and decoding resumes after the next 0x00. A run of
    bytes without 0x00 longer than one maximum encoded frame is counted once as
    ``too_long`` and discarded as it arrives, so memory stays bounded by
    MAX_ENCODED_SIZE plus the chunk being fed.
    """

    def __init__(self, supported_versions: Collection[int] = SUPPORTED_VERSIONS) -> None:
        self.stats = DecoderStats()
        self._versions = frozenset(supported_versions)
        self._pending = b""  # bytes of the frame in progress (never > MAX_ENCODED_SIZE)
        self._discarding = False  # inside an over-long run: drop everything up to 0x00

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (bounded by MAX_ENCODED_SIZE)."""
        return len(self._pending)

    def reset(self) -> None:
        """Forget any partial frame (e.g. after the link was re-opened); keep stats."""
        self._pending = b""
        self._discarding = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Consume ``data``; return the messages whose closing 0x00 was in it, in order."""
        chunks = (self._pending + bytes(data)).split(b"\x00")
        tail = chunks.pop()  # after the last delimiter: an incomplete frame
        out: list[Message] = []
        stats = self.stats
        for chunk in chunks:
            if self._discarding:
                stats.bytes_discarded += len(chunk)
                self._discarding = False
                continue
            if not chunk:
                continue  # back-to-back delimiters: idle line or a sender flushing sync
            msg = self._decode(chunk)
            if msg is not None:
                out.append(msg)
        if self._discarding:
            stats.bytes_discarded += len(tail)
            tail = b""
        elif len(tail) > MAX_ENCODED_SIZE:
            stats.too_long += 1
            stats.bytes_discarded += len(tail)
            self._discarding = True
            tail = b""
        self._pending = tail
        return out

    def _decode(self, chunk: bytes) -> Message | None:
        try:
            msg = decode_frame(chunk, self._versions)
        except UnknownTypeError:
            self.stats.unknown_type += 1
            return None
        except (CobsError, FrameTooLongError, FrameTooShortError, CrcError, VersionError,
                PayloadError) as exc:
            setattr(self.stats, _COUNTER[type(exc)], getattr(self.stats, _COUNTER[type(exc)]) + 1)
            self.stats.bytes_discarded += len(chunk)
            return None
        self.stats.frames_ok += 1
        return msg
