"""Protocol numbers: sizes, message types and code tables (mirrored in ``c/fb_protocol.h``).

Kept apart from the codecs so that the tables in PROTOCOL.md, this module and
the C header can be compared side by side; ``tests/test_fb_c_crosscheck.py``
checks the C header against this module.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = [
    "CRC_SIZE",
    "HEADER_SIZE",
    "INVALID_INT16",
    "INVALID_INT24",
    "MAX_ENCODED_SIZE",
    "MAX_FRAME_SIZE",
    "MAX_PAYLOAD_SIZE",
    "MIN_FRAME_SIZE",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "ContactState",
    "Flags",
    "LogLevel",
    "MsgType",
    "NackReason",
    "SampleFormat",
    "StatusError",
    "Unit",
    "VitalFlags",
    "VitalKind",
    "WelcomeResult",
]

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

HEADER_SIZE = 16
CRC_SIZE = 4
MIN_FRAME_SIZE = HEADER_SIZE + CRC_SIZE
MAX_FRAME_SIZE = 1024  # decoded: header + payload + CRC
MAX_PAYLOAD_SIZE = MAX_FRAME_SIZE - MIN_FRAME_SIZE  # 1004
MAX_ENCODED_SIZE = MAX_FRAME_SIZE + (MAX_FRAME_SIZE + 253) // 254  # 1029, without delimiter

INVALID_INT16 = -0x8000  # "no valid sample" (lead off, saturated, not yet settled)
INVALID_INT24 = -0x800000


class MsgType(IntEnum):
    """Message type byte. 0x01-0x7F are sent by devices, 0x80-0xFF by the gateway,
    except ACK/NACK and the time-sync pair, which either side may send."""

    HELLO = 0x01
    SAMPLES = 0x10
    VITALS = 0x11
    STATUS = 0x12
    LOG = 0x13
    TIME_SYNC_REQ = 0x20
    TIME_SYNC_RESP = 0x21
    ACK = 0x30
    NACK = 0x31
    WELCOME = 0x81


class Flags(IntFlag):
    """Header flags; undefined bits are sent as 0 and ignored on receipt."""

    ACK_REQUESTED = 0x01  # the receiver answers this frame with ACK or NACK
    RETRANSMIT = 0x02  # a repeat of a frame sent before (same seq)


class SampleFormat(IntEnum):
    INT16 = 1
    INT24 = 2


class VitalKind(IntEnum):
    """Numeric measurement kinds in VITALS (LOINC codes in PROTOCOL.md)."""

    HEART_RATE = 1
    SPO2 = 2
    RESP_RATE = 3
    TEMPERATURE = 4
    BP_SYSTOLIC = 5
    BP_DIASTOLIC = 6
    BP_MEAN = 7
    PULSE_RATE = 8


class Unit(IntEnum):
    """Unit codes in VITALS; the UCUM string is the ``ucum`` property."""

    PER_MIN = 1
    PERCENT = 2
    CEL = 3
    DEGF = 4
    MM_HG = 5
    KPA = 6

    @property
    def ucum(self) -> str:
        return _UCUM[self]


_UCUM = {
    Unit.PER_MIN: "/min",
    Unit.PERCENT: "%",
    Unit.CEL: "Cel",
    Unit.DEGF: "[degF]",
    Unit.MM_HG: "mm[Hg]",
    Unit.KPA: "kPa",
}


class VitalFlags(IntFlag):
    QUESTIONABLE = 0x01  # low signal quality / artefact suspected by the firmware
    CALIBRATING = 0x02  # value from a sensor still settling


class ContactState(IntEnum):
    UNKNOWN = 0
    GOOD = 1
    POOR = 2
    OFF = 3


class StatusError(IntFlag):
    SENSOR_FAULT = 0x0001
    LOW_BATTERY = 0x0002
    SAMPLES_DROPPED = 0x0004  # device buffer overflowed; gaps follow in first_sample_index
    CLOCK_UNSYNCED = 0x0008
    OVER_TEMPERATURE = 0x0010
    STORAGE_FULL = 0x0020
    WATCHDOG_RESET = 0x0040
    CHARGING = 0x0080


class NackReason(IntEnum):
    NONE = 0  # used by ACK
    BAD_VERSION = 1
    UNKNOWN_TYPE = 2
    MALFORMED_PAYLOAD = 3
    NOT_READY = 4  # no HELLO/WELCOME exchange yet
    BUSY = 5
    UNSUPPORTED = 6  # well-formed but the receiver cannot act on it


class LogLevel(IntEnum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class WelcomeResult(IntEnum):
    OK = 0
    NO_COMMON_VERSION = 1
    REJECTED = 2  # device not enrolled on this gateway
