"""GATT health characteristic decoders against the worked examples of
../shared/spec/ble-gatt-health.md (every table), plus property tests."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.ble import gatt as g
from edge.ble.ieee11073 import (
    FLOAT_SPECIALS,
    SFLOAT_SPECIALS,
    Special,
    decode_float_raw,
    decode_sfloat_raw,
    encode_float,
    encode_sfloat,
    float32,
    sfloat,
)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# ---------------------------------------------------------------- 1.2 / 1.3 / 1.1

SFLOAT_VECTORS = [
    ("62 00", 0, 98, "98"), ("D6 F3", -1, 982, "98.2"), ("FA F0", -1, 250, "25.0"),
    ("C8 E0", -2, 200, "2.00"), ("02 10", 1, 2, "2E+1"), ("02 20", 2, 2, "2E+2"),
    ("2E 0B", 0, -1234, "-1234"), ("8C FF", -1, -116, "-11.6"), ("FF 0F", 0, -1, "-1"),
    ("01 80", -8, 1, "1E-8"), ("01 70", 7, 1, "1E+7"), ("FF F7", -1, 2047, "204.7"),
]


@pytest.mark.parametrize(("wire", "e", "m", "text"), SFLOAT_VECTORS)
def test_sfloat_worked_examples(wire: str, e: int, m: int, text: str) -> None:
    v = sfloat(h(wire))
    assert (v.exponent, v.mantissa, v.special) == (e, m, None)
    assert v.decimal == Decimal(text) and str(v.decimal) == text
    assert encode_sfloat(m, e) == h(wire)


def test_sfloat_keeps_precision_and_avoids_binary_float() -> None:
    assert str(sfloat(h("FA F0")).decimal) == "25.0"
    assert str(sfloat(h("C8 E0")).decimal) == "2.00"
    assert str(decode_sfloat_raw(0xF000 | 986).decimal) == "98.6"
    assert sfloat(h("20 20")).value == 3200.0


@pytest.mark.parametrize(("wire", "special"), [
    ("FF 07", Special.NAN), ("00 08", Special.NRES), ("FE 07", Special.POS_INF),
    ("02 08", Special.NEG_INF), ("01 08", Special.RESERVED)])
def test_sfloat_specials_are_no_value(wire: str, special: Special) -> None:
    v = sfloat(h(wire))
    assert v.special == special and v.value is None and v.decimal is None
    assert not v.is_number and v.data_absent_reason is not None
    assert encode_sfloat(special=special) == h(wire)


FLOAT_VECTORS = [("73 01 00 FF", -1, 371, "37.1"), ("74 0E 00 FE", -2, 3700, "37.00"),
                 ("A1 90 00 FD", -3, 37025, "37.025"), ("DA 03 00 FF", -1, 986, "98.6"),
                 ("51 0E 00 FE", -2, 3665, "36.65"), ("2E FB FF 00", 0, -1234, "-1234")]


@pytest.mark.parametrize(("wire", "e", "m", "text"), FLOAT_VECTORS)
def test_float_worked_examples(wire: str, e: int, m: int, text: str) -> None:
    v = float32(h(wire))
    assert (v.exponent, v.mantissa) == (e, m) and str(v.decimal) == text
    assert encode_float(m, e) == h(wire)


@pytest.mark.parametrize(("wire", "special"), [
    ("FF FF 7F 00", Special.NAN), ("00 00 80 00", Special.NRES), ("FE FF 7F 00", Special.POS_INF),
    ("02 00 80 00", Special.NEG_INF), ("01 00 80 00", Special.RESERVED)])
def test_float_specials(wire: str, special: Special) -> None:
    v = float32(h(wire))
    assert v.special == special and v.value is None


def test_fhir_data_absent_reasons() -> None:
    assert sfloat(h("FF 07")).data_absent_reason == "not-a-number"
    assert sfloat(h("00 08")).data_absent_reason == "error"
    assert sfloat(h("FE 07")).data_absent_reason == "positive-infinity"
    assert sfloat(h("02 08")).data_absent_reason == "negative-infinity"
    assert sfloat(h("01 08")).data_absent_reason == "error"


@given(st.integers(0, 0xFFFF))
def test_sfloat_any_raw(raw: int) -> None:
    v = decode_sfloat_raw(raw)
    if raw in SFLOAT_SPECIALS:
        assert v.value is None and v.special is SFLOAT_SPECIALS[raw]
    else:
        assert v.special is None and -2048 <= v.mantissa <= 2047 and -8 <= v.exponent <= 7
        assert encode_sfloat(v.mantissa, v.exponent) == raw.to_bytes(2, "little")


@given(st.integers(0, 0xFFFFFFFF))
def test_float_any_raw(raw: int) -> None:
    v = decode_float_raw(raw)
    if raw in FLOAT_SPECIALS:
        assert v.value is None
    else:
        assert v.special is None
        assert encode_float(v.mantissa, v.exponent) == raw.to_bytes(4, "little")


# ---------------------------------------------------------------- 2.2 Heart Rate

def test_hrm_examples() -> None:
    p = g.parse_heart_rate_measurement
    m = p(h("00 48"))
    assert (m.heart_rate, m.contact, m.energy_kj, m.rr_raw) == (72, g.SensorContact.NOT_SUPPORTED,
                                                               None, ())
    m = p(h("06 4B"))
    assert (m.heart_rate, m.contact) == (75, g.SensorContact.CONTACT)
    m = p(h("04 00"))
    assert m.contact == g.SensorContact.NO_CONTACT and not m.has_reading
    m = p(h("16 3E 1C 03 40 03"))
    assert (m.heart_rate, m.rr_raw) == (62, (796, 832))
    assert m.rr_ms == pytest.approx((777.34375, 812.5))
    m = p(h("19 2C 01 E8 03 52 03"))
    assert (m.heart_rate, m.energy_kj, m.rr_raw, m.contact) == (300, 1000, (850,),
                                                                g.SensorContact.NOT_SUPPORTED)
    assert m.rr_ms[0] == pytest.approx(830.078125)
    m = p(h("1E 5A 10 00 00 04 08 04 10 04"))
    assert (m.heart_rate, m.energy_kj, m.rr_raw) == (90, 16, (1024, 1032, 1040))
    assert m.rr_seconds == (1.0, 1032 / 1024, 1040 / 1024)
    assert p(h("01 48 00")).heart_rate == 72
    m = p(h("10 50 00 04 AB"))  # malformed: the stray byte is dropped, not an RR
    assert (m.heart_rate, m.rr_raw, m.extra) == (80, (1024,), 1)


def test_hrm_truncated_and_rfu() -> None:
    with pytest.raises(g.GattParseError):
        g.parse_heart_rate_measurement(h("01 48"))
    with pytest.raises(g.GattParseError):
        g.parse_heart_rate_measurement(h("08 48 01"))
    assert g.parse_heart_rate_measurement(h("E0 48")).rfu == 0xE0


def test_body_sensor_location() -> None:
    assert g.parse_body_sensor_location(h("01")) == "chest"
    assert g.parse_body_sensor_location(h("02")) == "wrist"
    assert g.parse_body_sensor_location(h("03")) == "finger"
    assert g.parse_body_sensor_location(h("09")) == "unknown"


@given(st.integers(0, 65535), st.lists(st.integers(0, 65535), max_size=9),
       st.sampled_from(list(g.SensorContact)), st.one_of(st.none(), st.integers(0, 65535)),
       st.booleans())
def test_hrm_round_trip(hr: int, rr: list[int], contact: g.SensorContact, ee: int | None,
                        u16: bool) -> None:
    raw = g.encode_heart_rate_measurement(hr, rr_raw=tuple(rr), contact=contact, energy_kj=ee,
                                          uint16=u16)
    m = g.parse_heart_rate_measurement(raw)
    assert (m.heart_rate, m.rr_raw, m.energy_kj, m.extra) == (hr, tuple(rr), ee, 0)
    assert m.contact == contact


PARSERS = [g.parse_heart_rate_measurement, g.parse_plx_spot_check, g.parse_plx_continuous,
           g.parse_temperature_measurement, g.parse_blood_pressure_measurement,
           g.parse_plx_features, g.parse_battery_level]


@given(st.binary(max_size=40), st.sampled_from(PARSERS))
def test_any_bytes_parse_or_reject_cleanly(data: bytes, parser) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(g.GattParseError):
        parser(data)


# ---------------------------------------------------------------- 3.6 / 3.7 PLX

def test_plx_spot_check_examples() -> None:
    p = g.parse_plx_spot_check
    m = p(h("00 62 00 48 00"))
    assert (m.spo2.value, m.pulse_rate.value, m.timestamp) == (98, 72, None)
    m = p(h("03 CF F3 40 00 E8 07 05 11 09 1F 00 00 01"))
    assert str(m.spo2.decimal) == "97.5" and m.pulse_rate.value == 64
    assert m.timestamp is not None
    assert m.timestamp.to_datetime() == dt.datetime(2024, 5, 17, 9, 31, 0)
    assert m.measurement_status == g.PlxMeasurementStatus.FULLY_QUALIFIED_DATA
    m = p(h("06 FF 07 FF 07 00 20 00 08 00"))
    assert m.spo2.special == Special.NAN and m.pulse_rate.special == Special.NAN
    assert m.measurement_status == g.PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
    assert m.device_sensor_status == g.PlxDeviceSensorStatus.SENSOR_UNCONNECTED_TO_USER
    assert m.measurement_status & g.PLX_NO_ALERT
    m = p(h("18 5F 00 6E 00 19 F0"))
    assert (m.spo2.value, m.pulse_rate.value, str(m.pai.decimal), m.clock_not_set) == \
        (95, 110, "2.5", True)
    assert m.timestamp is None
    m = p(h("01 62 00 48 00 00 00 00 00 00 00 00"))
    assert m.timestamp is not None and m.timestamp.to_datetime() is None
    assert m.spo2.value == 98


def test_plx_continuous_examples() -> None:
    p = g.parse_plx_continuous
    m = p(h("00 61 00 4E 00"))
    assert (m.spo2.value, m.pulse_rate.value) == (97, 78)
    m = p(h("03 60 00 50 00 5F 00 52 00 60 00 4F 00"))
    assert (m.spo2.value, m.pulse_rate.value, m.spo2_fast.value, m.pulse_rate_fast.value,
            m.spo2_slow.value, m.pulse_rate_slow.value) == (96, 80, 95, 82, 96, 79)
    m = p(h("0C 5E 00 58 00 40 00 30 00 00"))
    assert (m.spo2.value, m.pulse_rate.value) == (94, 88)
    assert m.measurement_status == g.PlxMeasurementStatus.EARLY_ESTIMATED_DATA
    assert m.device_sensor_status == (g.PlxDeviceSensorStatus.POOR_SIGNAL
                                      | g.PlxDeviceSensorStatus.LOW_PERFUSION)
    m = p(h("1C FF 07 FF 07 00 80 00 80 00 FF 07"))
    assert m.spo2.value is None and m.pulse_rate.value is None and m.pai.value is None
    assert m.measurement_status == g.PlxMeasurementStatus.INVALID_MEASUREMENT
    assert m.device_sensor_status == g.PlxDeviceSensorStatus.SENSOR_DISCONNECTED
    with pytest.raises(g.GattParseError):
        p(h("04 5E 00 58 00"))


def test_plx_features() -> None:
    f = g.parse_plx_features(h("03 00 E0 FF FF FF 00"))
    assert f.supported == 3 and f.measurement_status_support == 0xFFE0
    assert f.device_sensor_status_support == 0x00FFFF
    with pytest.raises(g.GattParseError):
        g.parse_plx_features(h("01 00"))


# ---------------------------------------------------------------- 4.2 thermometer

def test_temperature_examples() -> None:
    p = g.parse_temperature_measurement
    m = p(h("00 73 01 00 FF"))
    assert str(m.temperature.decimal) == "37.1" and not m.fahrenheit
    m = p(h("01 DA 03 00 FF"))
    assert str(m.temperature.decimal) == "98.6" and m.fahrenheit
    assert m.celsius == pytest.approx(37.0)
    m = p(h("06 6F 01 00 FF E8 07 05 11 09 1F 00 01"))
    assert str(m.temperature.decimal) == "36.7" and m.site == "armpit"
    assert m.timestamp.to_datetime() == dt.datetime(2024, 5, 17, 9, 31)
    m = p(h("04 A1 90 00 FD 06"))
    assert str(m.temperature.decimal) == "37.025" and m.site == "mouth" and m.timestamp is None
    m = p(h("00 FF FF 7F 00"))
    assert m.temperature.special == Special.NAN and m.celsius is None
    assert m.temperature.data_absent_reason == "not-a-number"
    m = p(h("02 6F 01 00 FF 00 00 00 00 00 00 00"))
    assert str(m.temperature.decimal) == "36.7" and m.timestamp.to_datetime() is None
    with pytest.raises(g.GattParseError):
        p(h("02 6F 01 00 FF 00"))


# ---------------------------------------------------------------- 5.2 blood pressure

def test_blood_pressure_examples() -> None:
    p = g.parse_blood_pressure_measurement
    m = p(h("00 79 00 51 00 5F 00"))
    assert (m.systolic.value, m.diastolic.value, m.mean.value, m.kpa) == (121, 81, 95, False)
    m = p(h("01 A1 F0 6C F0 7E F0"))
    assert [str(x.decimal) for x in (m.systolic, m.diastolic, m.mean)] == ["16.1", "10.8", "12.6"]
    assert m.kpa and m.mmhg(m.systolic) == pytest.approx(120.76, abs=0.01)
    m = p(h("1E 87 00 58 00 68 00 E8 07 05 11 09 1F 00 48 00 01 0C 00"))
    assert (m.systolic.value, m.diastolic.value, m.mean.value) == (135, 88, 104)
    assert m.timestamp.to_datetime() == dt.datetime(2024, 5, 17, 9, 31)
    assert (m.pulse_rate.value, m.user_id) == (72, 1)
    assert m.status.irregular_pulse and m.status.pulse_rate_range == g.PulseRateRange.ABOVE_UPPER
    assert not m.status.improper_position
    m = p(h("0C 76 00 4C 00 FF 07 3F 00 FF"))
    assert (m.systolic.value, m.diastolic.value) == (118, 76)
    assert m.mean.special == Special.NAN and m.pulse_rate.value == 63 and m.user_id == 0xFF
    m = p(h("10 8C 00 5A 00 6B 00 30 00"))
    assert (m.systolic.value, m.diastolic.value, m.mean.value) == (140, 90, 107)
    assert m.status.pulse_rate_range == g.PulseRateRange.BELOW_LOWER
    assert m.status.improper_position and not m.status.irregular_pulse


# ---------------------------------------------------------------- 6 / 7

def test_date_time_and_battery_and_dis() -> None:
    assert g.parse_date_time(h("E8 07 05 11 09 1F 00")).to_datetime() == \
        dt.datetime(2024, 5, 17, 9, 31)
    assert [g.parse_battery_level(h(x)).percent for x in ("64", "0F", "00", "65")] == \
        [100, 15, 0, None]
    assert g.parse_system_id(h("25 78 00 00 04 05 1C 00")) == "00-1C-05-04-00-00-78-25"
    assert g.parse_pnp_id(h("01 59 00 01 00 10 02")) == g.PnpId(1, 0x0059, 0x0001, 0x0210)
    assert g.parse_string(b"Acme\x00\x00") == "Acme"
    assert g.decode(g.BATTERY_LEVEL, h("0F")).percent == 15
