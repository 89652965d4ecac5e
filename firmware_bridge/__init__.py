"""Wire protocol between wearable firmware and the vitals-edge gateway.

Frames are COBS-encoded and 0x00-delimited, checked by CRC-32C; PROTOCOL.md
is the specification, ``c/`` the matching MCU codec. Typical gateway use::

    decoder = FrameDecoder()
    for msg in decoder.feed(serial_port.read(4096)):
        ...
    port.write(encode_frame(Ack(seq=n, acked_seq=msg.seq, acked_type=msg.TYPE)))
"""

from __future__ import annotations

from .constants import (
    INVALID_INT16,
    INVALID_INT24,
    MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    ContactState,
    Flags,
    LogLevel,
    MsgType,
    NackReason,
    SampleFormat,
    StatusError,
    Unit,
    VitalFlags,
    VitalKind,
    WelcomeResult,
)
from .convert import ChannelTable, to_physical
from .errors import (
    BridgeError,
    CobsError,
    CrcError,
    FrameError,
    FrameTooLongError,
    FrameTooShortError,
    PayloadError,
    UnknownTypeError,
    VersionError,
)
from .framing import DecoderStats, FrameDecoder, decode_frame, encode_frame
from .messages import (
    Ack,
    Channel,
    Hello,
    Log,
    Message,
    Nack,
    Samples,
    Status,
    Stream,
    TimeSyncRequest,
    TimeSyncResponse,
    Vital,
    Vitals,
    Welcome,
)
from .negotiate import choose_version

__all__ = [
    "INVALID_INT16",
    "INVALID_INT24",
    "MAX_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "Ack",
    "BridgeError",
    "Channel",
    "ChannelTable",
    "CobsError",
    "ContactState",
    "CrcError",
    "DecoderStats",
    "Flags",
    "FrameDecoder",
    "FrameError",
    "FrameTooLongError",
    "FrameTooShortError",
    "Hello",
    "Log",
    "LogLevel",
    "Message",
    "MsgType",
    "Nack",
    "NackReason",
    "PayloadError",
    "SampleFormat",
    "Samples",
    "Status",
    "StatusError",
    "Stream",
    "TimeSyncRequest",
    "TimeSyncResponse",
    "Unit",
    "UnknownTypeError",
    "VersionError",
    "Vital",
    "VitalFlags",
    "VitalKind",
    "Vitals",
    "Welcome",
    "WelcomeResult",
    "choose_version",
    "decode_frame",
    "encode_frame",
    "to_physical",
]
