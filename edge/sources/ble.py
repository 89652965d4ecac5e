"""BLE source: a wearable reached through bleak's BlueZ backend.

One :class:`BleSource` per device, each running its own supervisor task
(``ble:<address>``) so that many devices run at once and one that misbehaves
never holds up another; ``close()`` cancels it and waits for it, so no task
outlives the source.

Per connection: ``BleakClient.connect`` (connection attempts on one adapter
are serialised and counted by :class:`AdapterAccount`: BlueZ handles one LE
connection attempt per adapter at a time, and concurrent ones fail with
InProgress), then notifications are enabled on what the device offers:

* Heart Rate Measurement 0x2A37 -> :class:`~edge.types.VitalSample` heart rate
  (stamped on arrival; "sensor contact: no contact" and HR 0 are no reading,
  never asystole) and RR-based beat times (:class:`~edge.ble.beats.RrTimeline`,
  passed to ``on_beats``); a stretch of lost beats is a
  :class:`~edge.types.Gap` on stream ``(device, "rr")`` with indices in
  1/1024 s ticks (``fs = 1024``).
* PLX Continuous 0x2A5F -> SpO2 and pulse rate (special values are "no
  value": nothing is emitted; Invalid/Unavailable/Demo/Testing frames are
  dropped and counted; Questionable/Early/Calibrating get quality 0.5).
* PLX Spot-Check 0x2A5E (indications), Temperature Measurement 0x2A1C
  (indications), Blood Pressure Measurement 0x2A35 (indications) -> SpO2 and
  pulse rate, temperature in Cel, systolic/diastolic/mean in mm[Hg] and pulse
  rate; ``device_time`` from the measurement's own time stamp when it carries
  one (mapped onto the gateway clock, see :func:`device_time`), else arrival.
  SFLOAT/FLOAT special values never become numbers: no sample, counted as
  ``<char>_special_value``. These devices send one measurement now and then,
  so the silent-link check only runs when a streaming characteristic (waveform,
  HRM, PLX continuous) is subscribed.
* the vitals-edge waveform service (:mod:`edge.ble.vendor`) -> the same
  firmware_bridge decoder as the serial source (HELLO/WELCOME, SAMPLES ->
  :class:`~edge.types.Block`, sequence and sample-index gaps).

Link loss (``disconnected_callback``), a silent link (no notification for
``silence_timeout`` s while connected: the link is closed and reopened), and
every connect failure are one WARNING line each, classified (see
:data:`FAILURE_HINTS`); retries use :class:`~edge.sources.backoff.Backoff`
forever (``reconnect=True``). After ``stale_after`` consecutive failures the
device is removed from BlueZ (stale service cache, phantom connection) and,
if the adapter keeps answering InProgress/NotReady, the adapter is
power-cycled (at most once per ``adapter_reset_min_s``).

Gaps: at link loss each waveform stream gets ``Gap(expected, None,
disconnect)`` at once (processors reset); when the device comes back with its
sample counter still running, a second ``Gap(expected, first, disconnect)``
gives the exact extent of what was lost. No patient data is logged.

Without an address the source scans with a :class:`~edge.ble.scan.ScanFilter`
(service UUIDs, name regex, address allow-list) and binds to the first device
that passes and that no other source of this process holds; it stays bound to
that device (reconnects go to the same address) until closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError

import firmware_bridge as fb
from edge.ble import gatt
from edge.ble import scan as blescan
from edge.ble.beats import RrTimeline
from edge.ble.vendor import VENDOR_CONTROL, VENDOR_DATA
from edge.clock import Clock, MonotonicClock
from edge.config import SourceConfig
from edge.errors import ConfigError, SourceError
from edge.sources.backoff import Backoff
from edge.sources.base import LiveBuffer, Source
from edge.sources.registry import register
from edge.sources.serial import RateLimitedLog, SerialSource
from edge.types import (
    VITAL_UNITS,
    Gap,
    GapReason,
    SourceItem,
    StreamKey,
    VitalKind,
    VitalSample,
)

log = logging.getLogger(__name__)

ADDRESS_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")

#: failure class -> what it most likely means (one WARNING line per failure class per minute)
FAILURE_HINTS = {
    "abort_by_local": "connection aborted by the local adapter (le-connection-abort-by-local: "
                      "RF interference or a busy adapter)",
    "in_progress": "adapter busy: another operation in progress (InProgress)",
    "not_ready": "adapter not ready (NotReady: powered off or resetting)",
    "no_slots": "no free connection slot on the adapter (too many links)",
    "not_found": "device not found: not advertising or out of range",
    "timeout": "connect timed out",
    "services": "service discovery failed (stale GATT cache?)",
    "auth": "authentication/pairing required or failed (pair once: edge ble pair ADDRESS)",
    "other": "connect failed",
}


def classify(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, BleakDeviceNotFoundError):
        return "not_found"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if "le-connection-abort-by-local" in text:
        return "abort_by_local"
    if "InProgress" in text:
        return "in_progress"
    if "NotReady" in text:
        return "not_ready"
    if "limited resources" in text or "0x0d" in text.lower():
        return "no_slots"
    if "Authentication" in text or "NotPermitted" in text or "Insufficient" in text:
        return "auth"
    if "discover services" in text:
        return "services"
    return "other"


@dataclass
class AdapterAccount:
    """Connection attempts on one adapter: serialised, counted; resets rate-limited."""

    name: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: scans for filter-bound sources, one at a time: bleak sends every scanner's
    #: SetDiscoveryFilter/StartDiscovery/StopDiscovery over one D-Bus connection, and BlueZ
    #: keeps one discovery filter and one discovery session per client, so overlapping
    #: scans replace each other's filter and one scan's stop ends the others' discovery
    scan_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    attempts: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    busy_streak: int = 0
    last_reset: float = -1e9
    resets: int = 0


_ADAPTERS: dict[tuple[int, str], AdapterAccount] = {}


def adapter_account(name: str) -> AdapterAccount:
    """The account of adapter ``name`` in this event loop (one process owns each adapter)."""
    key = (id(asyncio.get_running_loop()), name)
    acct = _ADAPTERS.get(key)
    if acct is None:
        acct = _ADAPTERS[key] = AdapterAccount(name)
    return acct


@dataclass
class BleLinkStats:
    connects: int = 0
    attempts: int = 0
    link_losses: int = 0
    silent_links: int = 0
    notifications: int = 0
    bytes_in: int = 0
    parse_errors: int = 0
    stale_removed: int = 0
    adapter_resets: int = 0
    #: seconds from link loss to the first notification of the next connection
    resume_latencies: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resume_latencies"] = len(self.resume_latencies)
        return d


class _FrameStream(SerialSource):
    """The serial source's firmware_bridge handling, fed from notifications (no port).

    SAMPLES that arrive on a connection before its HELLO are held (up to
    :attr:`HOLD_MAX` frames) and decoded, in order, with that HELLO's table once it
    arrives; the device is NACKed NOT_READY (it answers with HELLO). The firmware
    enables its data stream when the CCCD is written and queues HELLO from there:
    a frame already on its way can overtake the HELLO, so what the gateway makes
    of a connection must not depend on that order.
    """

    HOLD_MAX = 64

    def __init__(self, owner: BleSource) -> None:
        super().__init__(f"ble:{owner.address}", device=owner.device, clock=owner.clock)
        self._owner = owner
        self._open_gaps: dict[StreamKey, int] = {}
        self._awaiting_hello = True
        self._held: list[tuple[fb.Samples, float, int]] = []
        self.held_frames = 0
        self.held_dropped = 0

    def _dispatch(self, msg: fb.Message, now: float, errors: int) -> None:
        if self._awaiting_hello and isinstance(msg, fb.Samples):
            if len(self._held) < self.HOLD_MAX:
                self._held.append((msg, now, errors))
                self.held_frames += 1
            else:
                self.held_dropped += 1
                self.stats.count_error("samples_before_hello_dropped")
            mono = time.monotonic()
            if mono - self._last_nack >= 1.0:
                self._last_nack = mono
                self._send(fb.Nack(acked_seq=msg.seq, acked_type=msg.TYPE,
                                   reason=fb.NackReason.NOT_READY))
            return
        super()._dispatch(msg, now, errors)
        if isinstance(msg, fb.Hello):
            self._awaiting_hello = False
            held, self._held = self._held, []
            if self._table is None:  # HELLO refused (no common version)
                self.held_dropped += len(held)
                return
            for m, t, e in held:  # in arrival order
                self._on_samples(m, t, e)

    def _push(self, item: SourceItem) -> None:
        if isinstance(item, Gap) and item.key in self._open_gaps:
            start = self._open_gaps.pop(item.key)
            # the exact extent of an open disconnect gap (the serial code calls it sequence)
            item = dataclasses.replace(item, start_index=start, reason=GapReason.DISCONNECT)
            self.stats.gaps -= 1  # the open gap was counted already
        elif hasattr(item, "key"):
            self._open_gaps.pop(item.key, None)
        self._owner._push(item)

    def _send(self, msg: fb.Message) -> None:
        msg = dataclasses.replace(msg, seq=self._tx_seq, version=self._version,
                                  timestamp_us=time.monotonic_ns() // 1000)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFFFFFF
        self.link.frames_out += 1
        self._owner._write_control(fb.encode_frame(msg))

    def new_connection(self) -> None:
        self._awaiting_hello = True
        self._held = []
        self.decoder.reset()
        self._rx_seq = None
        self._last_valid = time.monotonic()
        self._bytes_since_valid = 0
        self._baud_warned = False

    def link_lost(self, now: float) -> list[Gap]:
        gaps = []
        for st in self._streams.values():
            if st.expected is None:
                continue
            gaps.append(Gap(st.key, st.expected, None, GapReason.DISCONNECT, now,
                            st.stream.sample_rate_hz))
            self._open_gaps[st.key] = st.expected
            st.after_hello = True
        self.stats.gaps += len(gaps)
        return gaps


class BleSource(Source):
    """One BLE wearable; see the module docstring."""

    name = "ble"

    def __init__(self, address: str | None, *, device: str = "", adapter: str = "hci0",
                 clock: Clock | None = None, reconnect: bool = True,
                 backoff: Backoff | None = None, connect_timeout: float = 20.0,
                 silence_timeout: float = 10.0, stale_after: int = 3,
                 adapter_reset_after: int = 5, adapter_reset_min_s: float = 300.0,
                 buffer_size: int = 1024, error_log_interval_s: float = 60.0,
                 on_beats: Callable[[StreamKey, list[float]], None] | None = None,
                 scan_filter: blescan.ScanFilter | None = None,
                 scan_timeout: float = 10.0) -> None:
        super().__init__()
        if address:
            if not ADDRESS_RE.match(address):
                raise SourceError(f"{address!r}: a BLE address looks like AA:BB:CC:DD:EE:FF")
        elif scan_filter is None or scan_filter.empty:
            raise SourceError("a BLE source needs an address or at least one scan filter "
                              "(service_uuids, name_pattern, address_allow)")
        self.address: str | None = address.upper() if address else None
        self.scan_filter = scan_filter
        self.scan_timeout = scan_timeout
        self._device_given = bool(device)
        self.device = device or (self.address.replace(":", "").lower() if self.address
                                 else "ble-unbound")
        self.adapter = adapter
        self.clock: Clock = clock or MonotonicClock()
        self.reconnect = reconnect
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self.connect_timeout = connect_timeout
        self.silence_timeout = silence_timeout
        self.stale_after = stale_after
        self.adapter_reset_after = adapter_reset_after
        self.adapter_reset_min_s = adapter_reset_min_s
        self.on_beats = on_beats
        self.link = BleLinkStats()
        self.body_sensor_location: str | None = None
        self.connected = False
        self.frames = _FrameStream(self)
        self.rr = RrTimeline()
        self._buffer = LiveBuffer(buffer_size, self.stats)
        self._errlog = RateLimitedLog(log, error_log_interval_s)
        self._task: asyncio.Task[None] | None = None
        self._client: BleakClient | None = None
        self._lost = asyncio.Event()
        self._closed = asyncio.Event()
        self._item_ready = asyncio.Event()
        self._last_rx = 0.0
        self._down_at: float | None = None
        self._ended = False
        self._writes: set[asyncio.Task[None]] = set()
        self._streaming = True  # a streaming characteristic is subscribed (silence check)

    @property
    def label(self) -> str:
        """The address, or the scan filter while no device is bound yet (log lines)."""
        if self.address:
            return self.address
        assert self.scan_filter is not None
        return f"scan({self.scan_filter.describe()})"

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ble:{self.address or 'scan'}")

    async def close(self) -> None:
        self._closed.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._writes):
            t.cancel()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        with contextlib.suppress(RuntimeError):
            blescan.release_all(self)
        self._item_ready.set()

    async def items(self) -> AsyncIterator[SourceItem]:
        while True:
            if self._buffer.qsize():
                yield await self._buffer.get()
                continue
            if self._closed.is_set() or self._ended:
                return
            self._item_ready.clear()
            await self._item_ready.wait()

    def _push(self, item: SourceItem) -> None:
        self._buffer.push(item)
        self._item_ready.set()

    def link_stats(self) -> dict[str, Any]:
        return {**self.link.as_dict(), "reconnects": self.stats.reconnects,
                "held_before_hello": self.frames.held_frames,
                "decoder": self.frames.decoder.stats.as_dict(), "errors": dict(self.stats.errors)}

    # -- the supervisor -------------------------------------------------------------
    async def _run(self) -> None:
        acct = adapter_account(self.adapter)
        failures = 0
        first = True
        try:
            while not self._closed.is_set():
                if not first:
                    await self._sleep(self.backoff.next_delay())
                    if self._closed.is_set():
                        return
                first = False
                try:
                    await self._connect(acct)
                except (BleakError, BleakDBusError, TimeoutError, OSError, EOFError) as exc:
                    failures += 1
                    await self._failed(acct, exc, failures)
                    continue
                failures = 0
                await self._supervise()
                await self._disconnect()
                if not self.reconnect:
                    break
        finally:
            self._ended = not self.reconnect or self._closed.is_set()
            self.connected = False  # closing: a local disconnect, not a link loss
            await self._disconnect()
            self._item_ready.set()

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)

    async def _bind(self, acct: AdapterAccount) -> Any:
        """Scan for a device passing the filters; bind this source to it (a BLEDevice)."""
        assert self.scan_filter is not None
        async with acct.scan_lock:
            hit = await blescan.find_device(self.scan_filter, self, adapter=self.adapter,
                                            timeout=self.scan_timeout)
        if hit is None:
            raise BleakDeviceNotFoundError(self.label, "no device matching the scan filters")
        dev, adv = hit
        self.address = dev.address.upper()
        if not self._device_given:
            self.device = self.address.replace(":", "").lower()
            self.frames = _FrameStream(self)
        log.info("ble %s: scan filter (%s) matched %s (rssi %s)", self.address,
                 self.scan_filter.describe(), adv.local_name or dev.name or "unnamed",
                 adv.rssi)
        return dev

    async def _connect(self, acct: AdapterAccount) -> None:
        self._lost.clear()
        target: Any = self.address
        if target is None:
            target = await self._bind(acct)
        client = BleakClient(target, disconnected_callback=self._on_disconnect,
                             timeout=self.connect_timeout, bluez={"adapter": self.adapter})
        async with acct.lock:
            acct.attempts += 1
            self.link.attempts += 1
            try:
                await client.connect()
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 5)
                raise
        self._client = client
        self.connected = True
        acct.busy_streak = 0
        self.link.connects += 1
        if self.link.connects > 1:
            self.stats.reconnects += 1
        self.frames.new_connection()
        self.rr.reset()
        self._last_rx = time.monotonic()
        uuids = {c.uuid.lower() for s in client.services for c in s.characteristics}
        if gatt.BODY_SENSOR_LOCATION in uuids and self.body_sensor_location is None:
            with contextlib.suppress(BleakError, gatt.GattParseError):
                self.body_sensor_location = gatt.parse_body_sensor_location(
                    bytes(await client.read_gatt_char(gatt.BODY_SENSOR_LOCATION)))
        subscribed = []
        for uuid, handler in ((VENDOR_DATA, self._on_vendor), (gatt.HEART_RATE_MEASUREMENT,
                              self._on_hrm), (gatt.PLX_CONTINUOUS, self._on_plx),
                              (gatt.PLX_SPOT_CHECK, self._on_plx_spot),
                              (gatt.TEMPERATURE_MEASUREMENT, self._on_temperature),
                              (gatt.BLOOD_PRESSURE_MEASUREMENT, self._on_bp)):
            if uuid in uuids:
                await client.start_notify(uuid, handler)
                subscribed.append(uuid)
        if not subscribed:
            raise BleakError("the device offers none of: vitals-edge waveform service, "
                             "Heart Rate Measurement, PLX Continuous/Spot-Check, Temperature "
                             "Measurement, Blood Pressure Measurement")
        self._streaming = bool({VENDOR_DATA, gatt.HEART_RATE_MEASUREMENT,
                                gatt.PLX_CONTINUOUS} & set(subscribed))
        log.info("ble %s: connected (attempt %d)%s", self.address, self.link.attempts,
                 f", reconnect {self.stats.reconnects}" if self.stats.reconnects else "")

    async def _failed(self, acct: AdapterAccount, exc: BaseException, failures: int) -> None:
        kind = classify(exc)
        acct.failures[kind] = acct.failures.get(kind, 0) + 1
        self.stats.count_error(f"connect_{kind}")
        self._errlog.warning(f"connect_{kind}", 1, "ble %s: %s", self.label,
                             FAILURE_HINTS[kind])
        if kind in ("in_progress", "not_ready"):
            acct.busy_streak += 1
        if failures == self.stale_after and kind not in ("not_found", "not_ready") \
                and self.address is not None:
            from edge.ble.bluez import remove_device

            with contextlib.suppress(Exception):
                if await remove_device(self.adapter, self.address):
                    self.link.stale_removed += 1
                    log.warning("ble %s: %d failures in a row: removed the device from BlueZ "
                                "(stale service cache / phantom connection)", self.address,
                                failures)
        now = time.monotonic()
        if acct.busy_streak >= self.adapter_reset_after \
                and now - acct.last_reset >= self.adapter_reset_min_s:
            from edge.ble.bluez import reset_adapter

            acct.last_reset = now
            acct.busy_streak = 0
            acct.resets += 1
            self.link.adapter_resets += 1
            log.warning("ble %s: adapter %s stuck (InProgress/NotReady): power-cycling it",
                        self.address, self.adapter)
            with contextlib.suppress(Exception):
                await reset_adapter(self.adapter)

    async def _supervise(self) -> None:
        """Until the link drops, goes silent or the source closes."""
        period = max(0.01, self.silence_timeout / 4)
        while not self._closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), period)
            if self._lost.is_set():
                self._errlog.warning("link_lost", 1, "ble %s: link lost; reconnecting",
                                     self.address)
                return
            if self._streaming and time.monotonic() - self._last_rx > self.silence_timeout:
                self.link.silent_links += 1
                self.stats.count_error("silent_link")
                self._errlog.warning("silent_link", 1, "ble %s: no notification in %.1f s while "
                                     "connected (silent link); reconnecting", self.address,
                                     self.silence_timeout)
                self._link_lost()
                return

    def _on_disconnect(self, client: BleakClient) -> None:
        if client is self._client:
            self._link_lost()

    def _link_lost(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self.link.link_losses += 1
        self._down_at = time.monotonic()
        now = self.clock.now()
        for gap in self.frames.link_lost(now):
            self._push(gap)
        self._lost.set()

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if self.connected:
            self._link_lost()
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)

    def _write_control(self, data: bytes) -> None:
        client = self._client
        if client is None or not self.connected:
            return

        async def write() -> None:
            with contextlib.suppress(Exception):
                await client.write_gatt_char(VENDOR_CONTROL, data, response=False)

        t = asyncio.get_running_loop().create_task(write())
        self._writes.add(t)
        t.add_done_callback(self._writes.discard)

    # -- notifications --------------------------------------------------------------
    def _rx(self, data: bytearray) -> float:
        mono = time.monotonic()
        self._last_rx = mono
        self.link.notifications += 1
        self.link.bytes_in += len(data)
        if self._down_at is not None:
            self.link.resume_latencies.append(mono - self._down_at)
            self._down_at = None
            self.backoff.reset()
        return self.clock.now()

    def _on_vendor(self, _char: Any, data: bytearray) -> None:
        self._rx(data)
        self.frames.feed(bytes(data))

    def _on_hrm(self, _char: Any, data: bytearray) -> None:
        now = self._rx(data)
        try:
            m = gatt.parse_heart_rate_measurement(bytes(data))
        except gatt.GattParseError:
            self._parse_error("hrm")
            return
        if m.extra or m.rfu:
            self.stats.count_error("hrm_extra_or_rfu")
        key = StreamKey(self.device, "vitals")
        t = now
        if m.rr_raw:
            upd = self.rr.add(now, m.rr_raw)
            if upd.gap is not None:
                self.stats.gaps += 1
                self._push(Gap(StreamKey(self.device, "rr"), upd.gap[0], upd.gap[1],
                               GapReason.SEQUENCE, now, float(RrTimeline.TICKS_PER_S)))
            t = upd.beat_times[-1]
            if self.on_beats is not None:
                self.on_beats(StreamKey(self.device, "rr"), upd.beat_times)
        if not m.has_reading:
            self.stats.count_error("hr_no_contact")
            return
        self.stats.vitals += 1
        self._push(VitalSample(key, VitalKind.HEART_RATE, float(m.heart_rate),
                               VITAL_UNITS[VitalKind.HEART_RATE], t, now))

    def _on_plx(self, _char: Any, data: bytearray) -> None:
        now = self._rx(data)
        try:
            m = gatt.parse_plx_continuous(bytes(data))
        except gatt.GattParseError:
            self._parse_error("plx")
            return
        status = m.measurement_status or gatt.PlxMeasurementStatus(0)
        if status & gatt.PLX_NO_ALERT:
            self.stats.count_error("plx_not_usable")
            return
        quality = 0.5 if status & gatt.PLX_LOW_QUALITY else 1.0
        key = StreamKey(self.device, "vitals")
        for kind, v in ((VitalKind.SPO2, m.spo2), (VitalKind.PULSE_RATE, m.pulse_rate)):
            if v.value is None:
                self.stats.count_error("plx_no_value")
                continue
            self.stats.vitals += 1
            self._push(VitalSample(key, kind, v.value, VITAL_UNITS[kind], now, now, quality))

    def device_time(self, stamp: gatt.DateTime | None, now: float) -> float:
        """A measurement's own time stamp on the gateway clock, else ``now`` (arrival).

        Date Time (0x2A08) is the device's local wall-clock time with no zone: it is
        read as the gateway's local time (the cuff or thermometer was set from a phone
        or this gateway in the same zone) and mapped through ``clock.wall()``.
        """
        when = stamp.to_datetime() if stamp is not None else None
        if when is None:
            return now
        return now + (when.timestamp() - self.clock.wall())

    def _vitals(self, what: str, values: list[tuple[VitalKind, float | None]],
                device_time: float, now: float, quality: float = 1.0) -> None:
        key = StreamKey(self.device, "vitals")
        for kind, v in values:
            if v is None:
                self.stats.count_error(f"{what}_special_value")
                continue
            self.stats.vitals += 1
            self._push(VitalSample(key, kind, v, VITAL_UNITS[kind], device_time, now, quality))

    def _on_plx_spot(self, _char: Any, data: bytearray) -> None:
        now = self._rx(data)
        try:
            m = gatt.parse_plx_spot_check(bytes(data))
        except gatt.GattParseError:
            self._parse_error("plx_spot")
            return
        status = m.measurement_status or gatt.PlxMeasurementStatus(0)
        if status & gatt.PLX_NO_ALERT:
            self.stats.count_error("plx_not_usable")
            return
        t = now if m.clock_not_set else self.device_time(m.timestamp, now)
        self._vitals("plx_spot", [(VitalKind.SPO2, m.spo2.value),
                                  (VitalKind.PULSE_RATE, m.pulse_rate.value)], t, now,
                     0.5 if status & gatt.PLX_LOW_QUALITY else 1.0)

    def _on_temperature(self, _char: Any, data: bytearray) -> None:
        now = self._rx(data)
        try:
            m = gatt.parse_temperature_measurement(bytes(data))
        except gatt.GattParseError:
            self._parse_error("temperature")
            return
        self._vitals("temperature", [(VitalKind.TEMPERATURE, m.celsius)],
                     self.device_time(m.timestamp, now), now)

    def _on_bp(self, _char: Any, data: bytearray) -> None:
        now = self._rx(data)
        try:
            m = gatt.parse_blood_pressure_measurement(bytes(data))
        except gatt.GattParseError:
            self._parse_error("bp")
            return
        st = m.status
        # a reading taken with movement, a loose cuff or the cuff out of position is shown
        # but flagged (quality 0.5), as for PLX "questionable"
        poor = st is not None and (st.body_movement or st.cuff_too_loose
                                   or st.improper_position)
        values: list[tuple[VitalKind, float | None]] = [
            (VitalKind.SYSTOLIC_BP, m.mmhg(m.systolic)),
            (VitalKind.DIASTOLIC_BP, m.mmhg(m.diastolic)),
            (VitalKind.MEAN_BP, m.mmhg(m.mean))]
        if m.pulse_rate is not None:
            values.append((VitalKind.PULSE_RATE, m.pulse_rate.value))
        self._vitals("bp", values, self.device_time(m.timestamp, now), now,
                     0.5 if poor else 1.0)

    def _parse_error(self, what: str) -> None:
        self.link.parse_errors += 1
        self.stats.count_error(f"{what}_malformed")
        self._errlog.warning(f"{what}_malformed", 1, "ble %s: malformed %s notifications "
                             "(shorter than their flags require)", self.address, what)

    @property
    def items_stats(self) -> dict[str, int]:  # pragma: no cover - convenience
        return {"blocks": self.frames.stats.blocks}


def build_ble(cfg: SourceConfig, index: int) -> BleSource:
    try:
        flt = blescan.ScanFilter.build(cfg.service_uuids, cfg.name_pattern, cfg.address_allow)
    except ConfigError as exc:
        raise ConfigError(f"sources[{index}]: {exc}") from exc
    if not cfg.address and flt.empty:
        raise ConfigError(f"sources[{index}]: a ble source needs 'address' (AA:BB:CC:DD:EE:FF) "
                          "or scan filters (service_uuids, name_pattern, address_allow)")
    try:
        return BleSource(cfg.address or None, device=cfg.device, adapter=cfg.adapter or "hci0",
                         silence_timeout=cfg.silence_timeout_s,
                         scan_filter=None if cfg.address else flt,
                         scan_timeout=cfg.scan_timeout_s)
    except SourceError as exc:
        raise ConfigError(f"sources[{index}]: {exc}") from exc


register("ble", build_ble)
