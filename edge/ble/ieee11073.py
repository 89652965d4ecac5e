"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) decimal numbers (SIG: medfloat16/32).

value = mantissa x 10**exponent, both two's complement, neither biased. The
special values (NaN, NRes, +/-INFINITY, reserved) are exact bit patterns with
exponent 0; they are checked on the whole raw value *before* any arithmetic and
become a :class:`MedFloat` with ``special`` set and no value: never a number
(a NaN decoded as 2047 looks like a plausible reading). Values are kept as
``Decimal`` so the precision the device stated survives (0xF0FA is 25.0, not 25).
See ../shared/spec/ble-gatt-health.md section 1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class Special(enum.StrEnum):
    NAN = "nan"  # invalid result; FHIR dataAbsentReason not-a-number
    NRES = "nres"  # not at this resolution (out of range); FHIR error
    POS_INF = "+inf"  # FHIR positive-infinity
    NEG_INF = "-inf"  # FHIR negative-infinity
    RESERVED = "reserved"  # reserved for future use; FHIR error


DATA_ABSENT_REASON = {
    Special.NAN: "not-a-number",
    Special.NRES: "error",
    Special.POS_INF: "positive-infinity",
    Special.NEG_INF: "negative-infinity",
    Special.RESERVED: "error",
}

SFLOAT_SPECIALS = {0x07FF: Special.NAN, 0x0800: Special.NRES, 0x07FE: Special.POS_INF,
                   0x0802: Special.NEG_INF, 0x0801: Special.RESERVED}
FLOAT_SPECIALS = {0x007FFFFF: Special.NAN, 0x00800000: Special.NRES,
                  0x007FFFFE: Special.POS_INF, 0x00800002: Special.NEG_INF,
                  0x00800001: Special.RESERVED}
_SFLOAT_CODE = {v: k for k, v in SFLOAT_SPECIALS.items()}
_FLOAT_CODE = {v: k for k, v in FLOAT_SPECIALS.items()}


@dataclass(frozen=True, slots=True)
class MedFloat:
    """A decoded SFLOAT/FLOAT: a number (``mantissa``, ``exponent``) or a ``special``."""

    raw: int
    mantissa: int | None
    exponent: int | None
    special: Special | None = None

    @property
    def is_number(self) -> bool:
        return self.special is None

    @property
    def decimal(self) -> Decimal | None:
        """The exact value with the device's precision (``Decimal('25.0')``), or None."""
        if self.mantissa is None or self.exponent is None:
            return None
        return Decimal(self.mantissa).scaleb(self.exponent)

    @property
    def value(self) -> float | None:
        """The value as a float (for signal processing), or None for a special value."""
        d = self.decimal
        return None if d is None else float(d)

    @property
    def data_absent_reason(self) -> str | None:
        return None if self.special is None else DATA_ABSENT_REASON[self.special]

    def __str__(self) -> str:
        return str(self.special.value) if self.special is not None else str(self.decimal)


def decode_sfloat_raw(raw: int) -> MedFloat:
    raw &= 0xFFFF
    special = SFLOAT_SPECIALS.get(raw)
    if special is not None:
        return MedFloat(raw, None, None, special)
    m = raw & 0x0FFF
    if m >= 0x800:
        m -= 0x1000
    e = raw >> 12
    if e >= 0x8:
        e -= 0x10
    return MedFloat(raw, m, e)


def decode_float_raw(raw: int) -> MedFloat:
    raw &= 0xFFFFFFFF
    special = FLOAT_SPECIALS.get(raw)
    if special is not None:
        return MedFloat(raw, None, None, special)
    m = raw & 0x00FFFFFF
    if m >= 0x800000:
        m -= 0x1000000
    e = raw >> 24
    if e >= 0x80:
        e -= 0x100
    return MedFloat(raw, m, e)


def sfloat(data: bytes | bytearray | memoryview, offset: int = 0) -> MedFloat:
    """Decode the little-endian SFLOAT at ``data[offset:offset + 2]``."""
    return decode_sfloat_raw(int.from_bytes(data[offset:offset + 2], "little"))


def float32(data: bytes | bytearray | memoryview, offset: int = 0) -> MedFloat:
    """Decode the little-endian FLOAT at ``data[offset:offset + 4]``."""
    return decode_float_raw(int.from_bytes(data[offset:offset + 4], "little"))


# ------------------------------------------------------------------ encoding (sim, tests)

def encode_sfloat(mantissa: int | None = None, exponent: int = 0, *,
                  special: Special | None = None) -> bytes:
    """Two wire bytes for ``mantissa x 10**exponent`` or a special value.

    The encoder never rounds (see spec 1.4): a mantissa outside -2048..2047
    (minus the patterns reserved for specials at exponent 0) is a ValueError.
    """
    if special is not None:
        return _SFLOAT_CODE[special].to_bytes(2, "little")
    if mantissa is None or not -2048 <= mantissa <= 2047 or not -8 <= exponent <= 7:
        raise ValueError(f"SFLOAT cannot hold {mantissa}e{exponent}")
    raw = ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)
    if raw in SFLOAT_SPECIALS:
        raise ValueError(f"{mantissa}e{exponent} collides with a special value")
    return raw.to_bytes(2, "little")


def encode_float(mantissa: int | None = None, exponent: int = 0, *,
                 special: Special | None = None) -> bytes:
    if special is not None:
        return _FLOAT_CODE[special].to_bytes(4, "little")
    if mantissa is None or not -0x800000 <= mantissa <= 0x7FFFFF or not -128 <= exponent <= 127:
        raise ValueError(f"FLOAT cannot hold {mantissa}e{exponent}")
    raw = ((exponent & 0xFF) << 24) | (mantissa & 0x00FFFFFF)
    if raw in FLOAT_SPECIALS:
        raise ValueError(f"{mantissa}e{exponent} collides with a special value")
    return raw.to_bytes(4, "little")


def sfloat_from_value(value: float, decimals: int = 0) -> bytes:
    """Encode ``value`` with ``decimals`` digits (simulators): round-half-even, documented."""
    if value != value:  # NaN
        return encode_sfloat(special=Special.NAN)
    return encode_sfloat(int(round(value * 10 ** decimals)), -decimals)


def float_from_value(value: float, decimals: int = 2) -> bytes:
    if value != value:
        return encode_float(special=Special.NAN)
    return encode_float(int(round(value * 10 ** decimals)), -decimals)
