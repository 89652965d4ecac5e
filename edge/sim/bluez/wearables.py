"""Virtual BLE wearables for :class:`~edge.sim.bluez.server.VirtualBlueZ`.

* :func:`vendor_wearable`: the vitals-edge waveform service streaming a recording
  (trace, WFDB or CSV) as firmware_bridge frames, cut into notifications of
  ``mtu - 3`` bytes; HELLO (after a 0x00) each time notifications are enabled.
  Its sample counter runs on while the link is down (no buffering, as on the
  wearables we target), and each SAMPLES frame that could not go out is
  recorded as a :class:`~edge.sim.serial_device.Fault` ``disconnect`` with its
  sample range: what the gateway's gaps must match.
* :func:`heart_rate_wearable`: Heart Rate Service (0x2A37 with RR intervals,
  body sensor location), Battery, Device Information; RR intervals are
  synthetic (seeded), not from the recording.
* :func:`oximeter`, :func:`thermometer`, :func:`bp_cuff`: PLX / HTS / BPS
  devices; their readable values are the spec examples (``edge ble inspect``),
  and :class:`IndicationFirmware` with :func:`temperature_scenario`,
  :func:`bp_scenario` or :func:`plx_spot_scenario` indicates a seeded series
  of measurements (device time stamps, and special values that must never
  become numbers) with the values the gateway must report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import firmware_bridge as fb
from edge.ble import gatt as g
from edge.ble.ieee11073 import (
    Special,
    encode_float,
    encode_sfloat,
    float_from_value,
    sfloat_from_value,
)
from edge.ble.vendor import VENDOR_CONTROL, VENDOR_DATA, VENDOR_SERVICE, chunk
from edge.sim.bluez.server import Characteristic, Peripheral, Service
from edge.sim.serial_device import Fault, StreamPlan, VirtualSerialDevice, gap_ranges
from edge.sources.open import open_replay
from edge.types import Block, VitalKind

__all__ = ["IndicationFirmware", "Measurement", "VendorStream", "bp_cuff", "bp_scenario",
           "gap_ranges", "heart_rate_wearable", "oximeter", "plx_spot_scenario",
           "temperature_scenario", "thermometer", "vendor_wearable"]


def _dis(model: str, serial: str) -> Service:
    return Service(g.DEVICE_INFORMATION_SERVICE, [
        Characteristic(g.MANUFACTURER_NAME, ["read"], b"vitals-edge sim"),
        Characteristic(g.MODEL_NUMBER, ["read"], model.encode()),
        Characteristic(g.SERIAL_NUMBER, ["read"], serial.encode()),
        Characteristic(g.FIRMWARE_REVISION, ["read"], b"1.0.0"),
        Characteristic(g.SYSTEM_ID, ["read"], bytes.fromhex("2578000004051C00")),
        Characteristic(g.PNP_ID, ["read"], bytes.fromhex("01590001001002")),
    ])


def _battery(level: int = 87) -> Service:
    return Service(g.BATTERY_SERVICE, [Characteristic(g.BATTERY_LEVEL, ["read", "notify"],
                                                      bytes([level]))])


@dataclass
class VendorStream:
    """The firmware of a vendor-stream wearable: ``await stream.run()``."""

    peripheral: Peripheral
    recording: str | Path
    speed: float | None = 1.0
    frame_s: float = 0.1
    device_id: int = 0x5645_4447_4500_00B1
    faults: list[Fault] = field(default_factory=list)
    samples_sent: int = 0
    frames_sent: int = 0
    welcomes: int = 0
    plans: dict = field(default_factory=dict)
    _seq: int = 0
    _need_hello: bool = False
    _anchor: tuple[float, float] | None = None

    def on_control(self, data: bytes) -> None:
        """Frames the gateway wrote: NACK NOT_READY (it has no HELLO) -> HELLO again."""
        if not hasattr(self, "_decoder"):
            self._decoder = fb.FrameDecoder()
        for msg in self._decoder.feed(data):
            if isinstance(msg, fb.Nack) and msg.reason == fb.NackReason.NOT_READY:
                self._need_hello = True
            elif isinstance(msg, fb.Welcome):
                self.welcomes += 1

    def _on_subscribe(self, uuid: str) -> None:
        if uuid == VENDOR_DATA:
            self._need_hello = True

    def _frame(self, msg: fb.Message, t: float) -> bytes:
        import dataclasses

        msg = dataclasses.replace(msg, seq=self._seq, timestamp_us=int(round(t * 1e6)) + 1_000_000)
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return fb.encode_frame(msg)

    def _send(self, data: bytes) -> bool:
        for part in chunk(data, self.peripheral.mtu):
            if not self.peripheral.notify(VENDOR_DATA, part):
                return False
        return True

    async def _pace(self, t: float) -> None:
        if self.speed is None:
            await asyncio.sleep(0)
            return
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, t)
        target = self._anchor[0] + (t - self._anchor[1]) / self.speed
        if target > now:
            await asyncio.sleep(target - now)

    async def run(self) -> None:
        scanner = VirtualSerialDevice(self.recording, speed=None, frame_s=self.frame_s)
        await scanner._scan()  # the streams, their scales (HELLO needs them upfront)
        self.plans = scanner.plans
        hello = fb.Hello(device_id=self.device_id, fw_version=(1, 0, 0), proto_min=1,
                         proto_max=1, streams=tuple(p.wire for p in self.plans.values()))
        self.peripheral.on_subscribe = self._on_subscribe
        src = open_replay(self.recording, speed=None)
        async with src:
            async for item in src:
                if not isinstance(item, Block):
                    continue
                plan: StreamPlan = self.plans[item.key]
                n = plan.frame_samples
                for i in range(0, item.n_samples, n):
                    first = item.first_index + i
                    data = item.data[i:i + n]
                    t_end = (first + data.shape[0]) / plan.fs
                    await self._pace(t_end)
                    if self._need_hello and self.peripheral.notifying(VENDOR_DATA):
                        self._need_hello = False
                        self._send(b"\x00" + self._frame(hello, t_end))
                    msg = fb.Samples(stream_id=plan.stream_id, first_sample_index=first,
                                     sample_format=plan.sample_format,
                                     data=plan.quantize(np.asarray(data)))
                    frame = self._frame(msg, t_end)
                    if not self._need_hello and self._send(frame):
                        self.samples_sent += data.shape[0]
                        self.frames_sent += 1
                    else:
                        self._fault(str(plan.key), first, first + data.shape[0])

    def _fault(self, stream: str, start: int, end: int) -> None:
        if self.faults and self.faults[-1].stream == stream and self.faults[-1].end_index == start:
            prev = self.faults[-1]
            self.faults[-1] = Fault("disconnect", stream, prev.start_index, end, prev.seq)
        else:
            self.faults.append(Fault("disconnect", stream, start, end, self._seq))

    def lost_ranges(self) -> list[tuple[int, int]]:
        return [(f.start_index, f.end_index) for f in self.faults]


def vendor_wearable(address: str, recording: str | Path, *, name: str = "VE-ECG",
                    mtu: int = 247, speed: float | None = 1.0,
                    frame_s: float = 0.1) -> tuple[Peripheral, VendorStream]:
    control = Characteristic(VENDOR_CONTROL, ["write-without-response", "write"])
    p = Peripheral(address, name, [
        Service(VENDOR_SERVICE, [Characteristic(VENDOR_DATA, ["notify"]), control]),
        _battery(), _dis("VE-ECG", "SIM-0001")], advertised=[VENDOR_SERVICE], mtu=mtu)
    stream = VendorStream(p, recording, speed=speed, frame_s=frame_s)
    control.on_write = stream.on_control
    return p, stream


@dataclass
class HeartRateFirmware:
    peripheral: Peripheral
    seed: int = 0
    mean_rr: int = 820  # 1/1024 s
    period: float = 1.0  # seconds between notifications (connection-event bursts)
    sent_beats: int = 0

    async def run(self, seconds: float | None = None) -> None:
        rng = random.Random(self.seed)
        t0 = time.monotonic()
        pending: list[int] = []
        acc = 0.0
        while seconds is None or time.monotonic() - t0 < seconds:
            await asyncio.sleep(self.period)
            acc += self.period * 1024
            while acc > 0:
                rr = max(300, int(rng.gauss(self.mean_rr, 30)))
                pending.append(rr)
                acc -= rr
            if pending:
                hr = int(round(60 * 1024 / (sum(pending) / len(pending))))
            else:  # no beat completed in this interval: HR again, no RR (as sensors do)
                hr = int(round(60 * 1024 / self.mean_rr))
            value = g.encode_heart_rate_measurement(hr, rr_raw=tuple(pending[-9:]))
            if self.peripheral.notify(g.HEART_RATE_MEASUREMENT, value):
                self.sent_beats += len(pending)
            pending.clear()


def heart_rate_wearable(address: str, *, name: str = "VE-HRM", seed: int = 0,
                        period: float = 1.0) -> tuple[Peripheral, HeartRateFirmware]:
    p = Peripheral(address, name, [
        Service(g.HEART_RATE_SERVICE, [
            Characteristic(g.HEART_RATE_MEASUREMENT, ["notify"]),
            Characteristic(g.BODY_SENSOR_LOCATION, ["read"], b"\x01")]),
        _battery(), _dis("VE-HRM", "SIM-0002")], advertised=[g.HEART_RATE_SERVICE])
    return p, HeartRateFirmware(p, seed=seed, period=period)


def oximeter(address: str, name: str = "VE-SPO2") -> Peripheral:
    cont = sfloat_from_value(97) + sfloat_from_value(78)
    return Peripheral(address, name, [
        Service(g.PULSE_OXIMETER_SERVICE, [
            Characteristic(g.PLX_CONTINUOUS, ["notify"], b"\x00" + cont),
            Characteristic(g.PLX_SPOT_CHECK, ["indicate"], bytes.fromhex("0062004800")),
            Characteristic(g.PLX_FEATURES, ["read"], b"\x00\x00")]),
        _battery(64), _dis("VE-SPO2", "SIM-0003")], advertised=[g.PULSE_OXIMETER_SERVICE])


def thermometer(address: str, name: str = "VE-TEMP") -> Peripheral:
    return Peripheral(address, name, [
        Service(g.HEALTH_THERMOMETER_SERVICE, [
            Characteristic(g.TEMPERATURE_MEASUREMENT, ["indicate"],
                           b"\x04" + float_from_value(37.1, 1) + b"\x01"),
            Characteristic(g.TEMPERATURE_TYPE, ["read"], b"\x01")]),
        _battery(15), _dis("VE-TEMP", "SIM-0004")], advertised=[g.HEALTH_THERMOMETER_SERVICE])


def bp_cuff(address: str, name: str = "VE-BP", *, passkey: int | None = None) -> Peripheral:
    return Peripheral(address, name, [
        Service(g.BLOOD_PRESSURE_SERVICE, [
            Characteristic(g.BLOOD_PRESSURE_MEASUREMENT, ["indicate"],
                           bytes.fromhex("1E870058006800E8070511091F004800010C00")),
            Characteristic(g.BLOOD_PRESSURE_FEATURE, ["read"], b"\x3f\x00")]),
        _battery(100), _dis("VE-BP", "SIM-0005")], advertised=[g.BLOOD_PRESSURE_SERVICE],
        requires_pairing=True, passkey=passkey)


# ------------------------------------------------------------- seeded measurement series

@dataclass(frozen=True)
class Measurement:
    """One indication and what the gateway must make of it: ``(kind, value or None)``
    (None: a special value, no sample) and the device time stamp (None: arrival)."""

    frame: bytes
    values: tuple[tuple[VitalKind, float | None], ...]
    stamp: dt.datetime | None


def _date_time(t: dt.datetime) -> bytes:
    return t.year.to_bytes(2, "little") + bytes([t.month, t.day, t.hour, t.minute, t.second])


def _stamps(rng: random.Random, n: int) -> list[dt.datetime | None]:
    base = dt.datetime(2026, 3, 1, 8, 0, 0) + dt.timedelta(minutes=rng.randrange(600))
    # every third one without a time stamp (the device has no clock set)
    return [None if i % 3 == 2 else base + dt.timedelta(minutes=15 * i) for i in range(n)]


def temperature_scenario(seed: int, n: int = 6) -> list[Measurement]:
    """Celsius FLOAT with 0.1 resolution, time stamps, type 'armpit'; one NaN, one +INF."""
    rng = random.Random(seed)
    out = []
    for i, stamp in enumerate(_stamps(rng, n)):
        special = {1: Special.NAN, 4: Special.POS_INF}.get(i)
        tenths = rng.randint(355, 405)
        value = encode_float(special=special) if special else encode_float(tenths, -1)
        flags = 0x04 | (0x02 if stamp else 0)
        frame = bytes([flags]) + value + (_date_time(stamp) if stamp else b"") + b"\x01"
        out.append(Measurement(frame, ((VitalKind.TEMPERATURE,
                                        None if special else tenths / 10),), stamp))
    return out


def bp_scenario(seed: int, n: int = 5) -> list[Measurement]:
    """mmHg SFLOATs with time stamp, pulse rate, user 1, status; one MAP not computed
    (NRes), one pulse rate NaN."""
    rng = random.Random(seed)
    out = []
    for i, stamp in enumerate(_stamps(rng, n)):
        sys_ = rng.randint(100, 170)
        dia = rng.randint(55, min(100, sys_ - 25))
        mean = None if i == 2 else dia + round((sys_ - dia) / 3)
        pr = None if i == 3 else rng.randint(50, 110)
        flags = 0x04 | 0x08 | 0x10 | (0x02 if stamp else 0)
        frame = bytes([flags]) + encode_sfloat(sys_) + encode_sfloat(dia) \
            + (encode_sfloat(special=Special.NRES) if mean is None else encode_sfloat(mean)) \
            + (_date_time(stamp) if stamp else b"") \
            + (encode_sfloat(special=Special.NAN) if pr is None else encode_sfloat(pr)) \
            + b"\x01" + b"\x00\x00"
        out.append(Measurement(frame, (
            (VitalKind.SYSTOLIC_BP, float(sys_)), (VitalKind.DIASTOLIC_BP, float(dia)),
            (VitalKind.MEAN_BP, None if mean is None else float(mean)),
            (VitalKind.PULSE_RATE, None if pr is None else float(pr))), stamp))
    return out


def plx_spot_scenario(seed: int, n: int = 5) -> list[Measurement]:
    """SpO2 and pulse rate SFLOATs with time stamps; one SpO2 NRes (no reading)."""
    rng = random.Random(seed)
    out = []
    for i, stamp in enumerate(_stamps(rng, n)):
        spo2 = None if i == 1 else rng.randint(88, 100)
        pr = rng.randint(50, 120)
        frame = bytes([0x01 if stamp else 0]) \
            + (encode_sfloat(special=Special.NRES) if spo2 is None else encode_sfloat(spo2)) \
            + encode_sfloat(pr) + (_date_time(stamp) if stamp else b"")
        out.append(Measurement(frame, ((VitalKind.SPO2, None if spo2 is None else float(spo2)),
                                       (VitalKind.PULSE_RATE, float(pr))), stamp))
    return out


@dataclass
class IndicationFirmware:
    """Indicates ``series`` on ``char`` one by one while the gateway listens; a measurement
    that could not go out (no link, not subscribed) is kept and sent after the next
    connection, as health devices store unsent measurements."""

    peripheral: Peripheral
    char: str
    series: list[Measurement]
    period: float = 0.05
    sent: int = 0

    async def run(self) -> None:
        while self.sent < len(self.series):
            await asyncio.sleep(self.period)
            if self.peripheral.notify(self.char, self.series[self.sent].frame):
                self.sent += 1


async def run_forever(*coros) -> None:  # type: ignore[no-untyped-def]
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
