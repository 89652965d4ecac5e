"""Pure decoders of the Bluetooth SIG health characteristics, exactly as the SIG specifies.

Heart Rate Measurement (0x2A37), Body Sensor Location (0x2A38), PLX Spot-Check
(0x2A5E) and Continuous (0x2A5F) Measurement, PLX Features (0x2A60),
Temperature Measurement / Intermediate Temperature (0x2A1C / 0x2A1E), Blood
Pressure Measurement / Intermediate Cuff Pressure (0x2A35 / 0x2A36), Battery
Level (0x2A19), Date Time (0x2A08 as a struct) and the Device Information
strings, System ID and PnP ID. Byte layouts, worked examples and the pitfalls
of other implementations: ../shared/spec/ble-gatt-health.md.

Rules every decoder follows (spec section 0): fields are walked with a
forward offset in their fixed order; the length the flags require is checked
before reading, and a shorter frame is a :class:`GattParseError`; bytes left
over are ignored but counted in ``extra`` (the caller logs them); reserved
flag bits are reported in ``rfu`` and never reject a frame. Numbers in
SFLOAT/FLOAT are :class:`~edge.ble.ieee11073.MedFloat`: a special value is
"no value", never a number. No I/O, no logging: the source decides what to log.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.ble.ieee11073 import MedFloat, float32, sfloat


class GattParseError(ValueError):
    """A characteristic value shorter than its flags require (or otherwise malformed)."""


def uuid16(n: int) -> str:
    """The 128-bit string form bleak and BlueZ use for a 16-bit assigned number."""
    return f"0000{n:04x}-0000-1000-8000-00805f9b34fb"


# services
HEART_RATE_SERVICE = uuid16(0x180D)
PULSE_OXIMETER_SERVICE = uuid16(0x1822)
HEALTH_THERMOMETER_SERVICE = uuid16(0x1809)
BLOOD_PRESSURE_SERVICE = uuid16(0x1810)
BATTERY_SERVICE = uuid16(0x180F)
DEVICE_INFORMATION_SERVICE = uuid16(0x180A)
# characteristics
HEART_RATE_MEASUREMENT = uuid16(0x2A37)
BODY_SENSOR_LOCATION = uuid16(0x2A38)
HEART_RATE_CONTROL_POINT = uuid16(0x2A39)
PLX_SPOT_CHECK = uuid16(0x2A5E)
PLX_CONTINUOUS = uuid16(0x2A5F)
PLX_FEATURES = uuid16(0x2A60)
TEMPERATURE_MEASUREMENT = uuid16(0x2A1C)
TEMPERATURE_TYPE = uuid16(0x2A1D)
INTERMEDIATE_TEMPERATURE = uuid16(0x2A1E)
BLOOD_PRESSURE_MEASUREMENT = uuid16(0x2A35)
INTERMEDIATE_CUFF_PRESSURE = uuid16(0x2A36)
BLOOD_PRESSURE_FEATURE = uuid16(0x2A49)
BATTERY_LEVEL = uuid16(0x2A19)
MANUFACTURER_NAME = uuid16(0x2A29)
MODEL_NUMBER = uuid16(0x2A24)
SERIAL_NUMBER = uuid16(0x2A25)
HARDWARE_REVISION = uuid16(0x2A27)
FIRMWARE_REVISION = uuid16(0x2A26)
SOFTWARE_REVISION = uuid16(0x2A28)
SYSTEM_ID = uuid16(0x2A23)
PNP_ID = uuid16(0x2A50)


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise GattParseError(f"{what}: {len(data)} bytes, the flags require {n}")


# ------------------------------------------------------------------------- Date Time

@dataclass(frozen=True, slots=True)
class DateTime:
    """Date Time (0x2A08): device local wall-clock time, no zone; 0 = unknown field."""

    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int

    def to_datetime(self) -> dt.datetime | None:
        """A naive datetime, or None when the date is unknown (0) or invalid."""
        if self.year == 0 or self.month == 0 or self.day == 0:
            return None
        try:
            return dt.datetime(self.year, self.month, self.day, self.hours, self.minutes,
                               self.seconds)
        except ValueError:
            return None


def parse_date_time(data: bytes, offset: int = 0) -> DateTime:
    _need(data, offset + 7, "Date Time")
    b = data[offset:offset + 7]
    return DateTime(int.from_bytes(b[0:2], "little"), b[2], b[3], b[4], b[5], b[6])


# ------------------------------------------------------------------------ Heart Rate

class SensorContact(enum.StrEnum):
    NOT_SUPPORTED = "not_supported"
    NO_CONTACT = "no_contact"
    CONTACT = "contact"


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    heart_rate: int  # bpm; 0 with NO_CONTACT means "no reading", not asystole
    contact: SensorContact
    energy_kj: int | None
    rr_raw: tuple[int, ...]  # 1/1024 s, oldest first (keep raw for HRV work)
    uint16: bool = False
    rfu: int = 0  # reserved flag bits that were set
    extra: int = 0  # stray bytes ignored (an odd byte after the RR list)

    @property
    def rr_seconds(self) -> tuple[float, ...]:
        return tuple(r / 1024 for r in self.rr_raw)

    @property
    def rr_ms(self) -> tuple[float, ...]:
        return tuple(r * 1000 / 1024 for r in self.rr_raw)

    @property
    def has_reading(self) -> bool:
        return self.contact != SensorContact.NO_CONTACT and self.heart_rate > 0


def parse_heart_rate_measurement(data: bytes) -> HeartRateMeasurement:
    data = bytes(data)
    _need(data, 2, "Heart Rate Measurement")
    flags = data[0]
    u16 = bool(flags & 0x01)
    pos = 1
    _need(data, pos + (2 if u16 else 1) + (2 if flags & 0x08 else 0), "Heart Rate Measurement")
    if u16:
        hr = int.from_bytes(data[pos:pos + 2], "little")
        pos += 2
    else:
        hr = data[pos]
        pos += 1
    contact = {0b00: SensorContact.NOT_SUPPORTED, 0b01: SensorContact.NOT_SUPPORTED,
               0b10: SensorContact.NO_CONTACT, 0b11: SensorContact.CONTACT}[(flags >> 1) & 0b11]
    energy = None
    if flags & 0x08:
        energy = int.from_bytes(data[pos:pos + 2], "little")
        pos += 2
    rr: tuple[int, ...] = ()
    extra = 0
    if flags & 0x10:
        n = (len(data) - pos) // 2
        rr = tuple(int.from_bytes(data[pos + 2 * i:pos + 2 * i + 2], "little") for i in range(n))
        pos += 2 * n
    extra = len(data) - pos
    return HeartRateMeasurement(hr, contact, energy, rr, u16, flags & 0xE0, extra)


BODY_SENSOR_LOCATIONS = {0: "other", 1: "chest", 2: "wrist", 3: "finger", 4: "hand",
                         5: "ear_lobe", 6: "foot"}


def parse_body_sensor_location(data: bytes) -> str:
    """The location name, or ``"unknown"`` for a reserved value (log it)."""
    _need(data, 1, "Body Sensor Location")
    return BODY_SENSOR_LOCATIONS.get(data[0], "unknown")


# ------------------------------------------------------------------------ Pulse oximeter

class PlxMeasurementStatus(enum.IntFlag):
    MEASUREMENT_ONGOING = 0x0020
    EARLY_ESTIMATED_DATA = 0x0040
    VALIDATED_DATA = 0x0080
    FULLY_QUALIFIED_DATA = 0x0100
    DATA_FROM_STORAGE = 0x0200
    DATA_FOR_DEMONSTRATION = 0x0400
    DATA_FOR_TESTING = 0x0800
    CALIBRATION_ONGOING = 0x1000
    MEASUREMENT_UNAVAILABLE = 0x2000
    QUESTIONABLE_MEASUREMENT = 0x4000
    INVALID_MEASUREMENT = 0x8000


class PlxDeviceSensorStatus(enum.IntFlag):
    EXTENDED_DISPLAY_UPDATE_ONGOING = 0x000001
    EQUIPMENT_MALFUNCTION = 0x000002
    SIGNAL_PROCESSING_IRREGULARITY = 0x000004
    INADEQUATE_SIGNAL = 0x000008
    POOR_SIGNAL = 0x000010
    LOW_PERFUSION = 0x000020
    ERRATIC_SIGNAL = 0x000040
    NONPULSATILE_SIGNAL = 0x000080
    QUESTIONABLE_PULSE = 0x000100
    SIGNAL_ANALYSIS_ONGOING = 0x000200
    SENSOR_INTERFERENCE = 0x000400
    SENSOR_UNCONNECTED_TO_USER = 0x000800
    UNKNOWN_SENSOR_CONNECTED = 0x001000
    SENSOR_DISPLACED = 0x002000
    SENSOR_MALFUNCTIONING = 0x004000
    SENSOR_DISCONNECTED = 0x008000


#: never raise a clinical alert from a frame with any of these (spec 3.3)
PLX_NO_ALERT = (PlxMeasurementStatus.DATA_FOR_DEMONSTRATION | PlxMeasurementStatus.DATA_FOR_TESTING
                | PlxMeasurementStatus.INVALID_MEASUREMENT
                | PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE)
#: tag as low quality rather than act on (spec 3.3)
PLX_LOW_QUALITY = (PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT
                   | PlxMeasurementStatus.EARLY_ESTIMATED_DATA
                   | PlxMeasurementStatus.CALIBRATION_ONGOING)


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    spo2: MedFloat  # %
    pulse_rate: MedFloat  # bpm
    timestamp: DateTime | None
    measurement_status: PlxMeasurementStatus | None
    device_sensor_status: PlxDeviceSensorStatus | None
    pai: MedFloat | None  # %
    clock_not_set: bool
    rfu: int = 0
    extra: int = 0


def parse_plx_spot_check(data: bytes) -> PlxSpotCheck:
    data = bytes(data)
    _need(data, 1, "PLX Spot-Check Measurement")
    flags = data[0]
    need = 5 + (7 if flags & 1 else 0) + (2 if flags & 2 else 0) + (3 if flags & 4 else 0) \
        + (2 if flags & 8 else 0)
    _need(data, need, "PLX Spot-Check Measurement")
    spo2, pr = sfloat(data, 1), sfloat(data, 3)
    pos = 5
    ts = ms = dss = pai = None
    if flags & 0x01:
        ts = parse_date_time(data, pos)
        pos += 7
    if flags & 0x02:
        ms = PlxMeasurementStatus(int.from_bytes(data[pos:pos + 2], "little") & 0xFFE0)
        pos += 2
    if flags & 0x04:
        dss = PlxDeviceSensorStatus(int.from_bytes(data[pos:pos + 3], "little") & 0xFFFF)
        pos += 3
    if flags & 0x08:
        pai = sfloat(data, pos)
        pos += 2
    return PlxSpotCheck(spo2, pr, ts, ms, dss, pai, bool(flags & 0x10), flags & 0xE0,
                        len(data) - pos)


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    spo2: MedFloat  # SpO2PR-Normal: use this one for NEWS2 and alarms
    pulse_rate: MedFloat
    spo2_fast: MedFloat | None
    pulse_rate_fast: MedFloat | None
    spo2_slow: MedFloat | None
    pulse_rate_slow: MedFloat | None
    measurement_status: PlxMeasurementStatus | None
    device_sensor_status: PlxDeviceSensorStatus | None
    pai: MedFloat | None
    rfu: int = 0
    extra: int = 0


def parse_plx_continuous(data: bytes) -> PlxContinuous:
    data = bytes(data)
    _need(data, 1, "PLX Continuous Measurement")
    flags = data[0]
    need = 5 + (4 if flags & 1 else 0) + (4 if flags & 2 else 0) + (2 if flags & 4 else 0) \
        + (3 if flags & 8 else 0) + (2 if flags & 16 else 0)
    _need(data, need, "PLX Continuous Measurement")
    spo2, pr = sfloat(data, 1), sfloat(data, 3)
    pos = 5
    sf = pf = ss = ps = ms = dss = pai = None
    if flags & 0x01:
        sf, pf = sfloat(data, pos), sfloat(data, pos + 2)
        pos += 4
    if flags & 0x02:
        ss, ps = sfloat(data, pos), sfloat(data, pos + 2)
        pos += 4
    if flags & 0x04:
        ms = PlxMeasurementStatus(int.from_bytes(data[pos:pos + 2], "little") & 0xFFE0)
        pos += 2
    if flags & 0x08:
        dss = PlxDeviceSensorStatus(int.from_bytes(data[pos:pos + 3], "little") & 0xFFFF)
        pos += 3
    if flags & 0x10:
        pai = sfloat(data, pos)
        pos += 2
    return PlxContinuous(spo2, pr, sf, pf, ss, ps, ms, dss, pai, flags & 0xE0, len(data) - pos)


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    supported: int
    measurement_status_support: int | None
    device_sensor_status_support: int | None


def parse_plx_features(data: bytes) -> PlxFeatures:
    data = bytes(data)
    _need(data, 2, "PLX Features")
    sup = int.from_bytes(data[0:2], "little")
    _need(data, 2 + (2 if sup & 1 else 0) + (3 if sup & 2 else 0), "PLX Features")
    pos = 2
    ms = dss = None
    if sup & 1:
        ms = int.from_bytes(data[pos:pos + 2], "little")
        pos += 2
    if sup & 2:
        dss = int.from_bytes(data[pos:pos + 3], "little")
    return PlxFeatures(sup, ms, dss)


# ------------------------------------------------------------------------ Thermometer

TEMPERATURE_TYPES = {1: "armpit", 2: "body", 3: "ear", 4: "finger", 5: "gastrointestinal",
                     6: "mouth", 7: "rectum", 8: "toe", 9: "tympanum"}


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    temperature: MedFloat
    fahrenheit: bool
    timestamp: DateTime | None
    temperature_type: int | None
    rfu: int = 0
    extra: int = 0

    @property
    def celsius(self) -> float | None:
        v = self.temperature.value
        if v is None:
            return None
        return (v - 32.0) * 5.0 / 9.0 if self.fahrenheit else v

    @property
    def site(self) -> str | None:
        if self.temperature_type is None:
            return None
        return TEMPERATURE_TYPES.get(self.temperature_type, "unknown")


def parse_temperature_measurement(data: bytes) -> TemperatureMeasurement:
    data = bytes(data)
    _need(data, 1, "Temperature Measurement")
    flags = data[0]
    _need(data, 5 + (7 if flags & 2 else 0) + (1 if flags & 4 else 0), "Temperature Measurement")
    temp = float32(data, 1)
    pos = 5
    ts = ttype = None
    if flags & 0x02:
        ts = parse_date_time(data, pos)
        pos += 7
    if flags & 0x04:
        ttype = data[pos]
        pos += 1
    return TemperatureMeasurement(temp, bool(flags & 1), ts, ttype, flags & 0xF8, len(data) - pos)


# ------------------------------------------------------------------------ Blood pressure

class PulseRateRange(enum.IntEnum):
    WITHIN = 0
    ABOVE_UPPER = 1
    BELOW_LOWER = 2
    RESERVED = 3


@dataclass(frozen=True, slots=True)
class BpStatus:
    raw: int

    @property
    def body_movement(self) -> bool:
        return bool(self.raw & 0x0001)

    @property
    def cuff_too_loose(self) -> bool:
        return bool(self.raw & 0x0002)

    @property
    def irregular_pulse(self) -> bool:
        return bool(self.raw & 0x0004)

    @property
    def pulse_rate_range(self) -> PulseRateRange:
        return PulseRateRange((self.raw >> 3) & 0b11)  # a 2-bit field, not two flags

    @property
    def improper_position(self) -> bool:
        return bool(self.raw & 0x0020)


KPA_TO_MMHG = 7.50062


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    systolic: MedFloat  # in Intermediate Cuff Pressure: the current cuff pressure
    diastolic: MedFloat  # unused (ignore) in Intermediate Cuff Pressure
    mean: MedFloat
    kpa: bool
    timestamp: DateTime | None
    pulse_rate: MedFloat | None
    user_id: int | None  # 0xFF = unknown user
    status: BpStatus | None
    rfu: int = 0
    extra: int = 0

    def mmhg(self, v: MedFloat) -> float | None:
        x = v.value
        return None if x is None else (x * KPA_TO_MMHG if self.kpa else x)


def parse_blood_pressure_measurement(data: bytes) -> BloodPressureMeasurement:
    data = bytes(data)
    _need(data, 1, "Blood Pressure Measurement")
    flags = data[0]
    need = 7 + (7 if flags & 2 else 0) + (2 if flags & 4 else 0) + (1 if flags & 8 else 0) \
        + (2 if flags & 16 else 0)
    _need(data, need, "Blood Pressure Measurement")
    sys_, dia, mean = sfloat(data, 1), sfloat(data, 3), sfloat(data, 5)
    pos = 7
    ts = pr = uid = status = None
    if flags & 0x02:
        ts = parse_date_time(data, pos)
        pos += 7
    if flags & 0x04:
        pr = sfloat(data, pos)
        pos += 2
    if flags & 0x08:
        uid = data[pos]
        pos += 1
    if flags & 0x10:
        status = BpStatus(int.from_bytes(data[pos:pos + 2], "little"))
        pos += 2
    return BloodPressureMeasurement(sys_, dia, mean, bool(flags & 1), ts, pr, uid, status,
                                    flags & 0xE0, len(data) - pos)


# ------------------------------------------------------------------------ Battery, DIS

@dataclass(frozen=True, slots=True)
class BatteryLevel:
    percent: int | None  # None for a reserved value (101-255): discard and log
    raw: int


def parse_battery_level(data: bytes) -> BatteryLevel:
    _need(data, 1, "Battery Level")
    raw = data[0]
    return BatteryLevel(raw if raw <= 100 else None, raw)


def parse_string(data: bytes) -> str:
    """A DIS UTF-8 string: not NUL-terminated, but trailing NULs (padding) are stripped."""
    return bytes(data).rstrip(b"\x00").decode("utf-8", errors="replace")


def parse_system_id(data: bytes) -> str:
    """System ID (0x2A23) as the EUI-64 string the PHD IG uses (``00-1C-05-04-00-00-78-25``)."""
    _need(data, 8, "System ID")
    v = int.from_bytes(bytes(data[:8]), "little")
    return "-".join(f"{b:02X}" for b in v.to_bytes(8, "big"))


@dataclass(frozen=True, slots=True)
class PnpId:
    vendor_id_source: int  # 1 = Bluetooth SIG company id, 2 = USB-IF vendor id
    vendor_id: int
    product_id: int
    product_version: int


def parse_pnp_id(data: bytes) -> PnpId:
    _need(data, 7, "PnP ID")
    d = bytes(data)
    return PnpId(d[0], int.from_bytes(d[1:3], "little"), int.from_bytes(d[3:5], "little"),
                 int.from_bytes(d[5:7], "little"))


# ------------------------------------------------------------------------ by UUID

#: characteristic UUID -> (name, decoder)
DECODERS: dict[str, tuple[str, Callable[[bytes], Any]]] = {
    HEART_RATE_MEASUREMENT: ("Heart Rate Measurement", parse_heart_rate_measurement),
    BODY_SENSOR_LOCATION: ("Body Sensor Location", parse_body_sensor_location),
    PLX_SPOT_CHECK: ("PLX Spot-Check Measurement", parse_plx_spot_check),
    PLX_CONTINUOUS: ("PLX Continuous Measurement", parse_plx_continuous),
    PLX_FEATURES: ("PLX Features", parse_plx_features),
    TEMPERATURE_MEASUREMENT: ("Temperature Measurement", parse_temperature_measurement),
    INTERMEDIATE_TEMPERATURE: ("Intermediate Temperature", parse_temperature_measurement),
    TEMPERATURE_TYPE: ("Temperature Type",
                       lambda d: TEMPERATURE_TYPES.get(d[0], "unknown") if d else "?"),
    BLOOD_PRESSURE_MEASUREMENT: ("Blood Pressure Measurement", parse_blood_pressure_measurement),
    INTERMEDIATE_CUFF_PRESSURE: ("Intermediate Cuff Pressure", parse_blood_pressure_measurement),
    BLOOD_PRESSURE_FEATURE: ("Blood Pressure Feature",
                             lambda d: int.from_bytes(bytes(d[:2]), "little")),
    BATTERY_LEVEL: ("Battery Level", parse_battery_level),
    MANUFACTURER_NAME: ("Manufacturer Name", parse_string),
    MODEL_NUMBER: ("Model Number", parse_string),
    SERIAL_NUMBER: ("Serial Number", parse_string),
    HARDWARE_REVISION: ("Hardware Revision", parse_string),
    FIRMWARE_REVISION: ("Firmware Revision", parse_string),
    SOFTWARE_REVISION: ("Software Revision", parse_string),
    SYSTEM_ID: ("System ID", parse_system_id),
    PNP_ID: ("PnP ID", parse_pnp_id),
}

SERVICE_NAMES = {
    HEART_RATE_SERVICE: "Heart Rate", PULSE_OXIMETER_SERVICE: "Pulse Oximeter",
    HEALTH_THERMOMETER_SERVICE: "Health Thermometer", BLOOD_PRESSURE_SERVICE: "Blood Pressure",
    BATTERY_SERVICE: "Battery", DEVICE_INFORMATION_SERVICE: "Device Information",
}


def decode(uuid: str, data: bytes) -> Any:
    """Decode a value by characteristic UUID; raw bytes for an unknown characteristic."""
    entry = DECODERS.get(uuid.lower())
    return bytes(data) if entry is None else entry[1](bytes(data))


# ------------------------------------------------------------------------ encoders (sim)

def encode_heart_rate_measurement(hr: int, *, rr_raw: tuple[int, ...] = (),
                                  contact: SensorContact = SensorContact.CONTACT,
                                  energy_kj: int | None = None, uint16: bool = False) -> bytes:
    flags = {SensorContact.NOT_SUPPORTED: 0, SensorContact.NO_CONTACT: 0x04,
             SensorContact.CONTACT: 0x06}[contact]
    if uint16 or hr > 255:
        flags |= 0x01
    if energy_kj is not None:
        flags |= 0x08
    if rr_raw:
        flags |= 0x10
    out = bytearray([flags])
    out += hr.to_bytes(2 if flags & 1 else 1, "little")
    if energy_kj is not None:
        out += energy_kj.to_bytes(2, "little")
    for r in rr_raw:
        out += r.to_bytes(2, "little")
    return bytes(out)
