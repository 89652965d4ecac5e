"""Serial source: a wearable on a UART, USB CDC-ACM or FTDI port speaking firmware_bridge.

Reading: the port is opened with pyserial (which sets raw mode, the baud rate
and an exclusive lock, on a pty as on a real port) and left non-blocking; its
file descriptor is watched with ``loop.add_reader``. Why not a thread doing
blocking reads: the bytes then arrive on the event-loop thread, where the
decoder, the :class:`~edge.sources.base.LiveBuffer` (an asyncio queue, not
thread-safe) and the reply path (WELCOME, ACK) live, with no locks and no
thread to stop on shutdown; closing is ``remove_reader`` + ``close``. A
blocking read in a thread also cannot be interrupted portably when the port
must be closed. The cost is POSIX-only (no ``add_reader`` on Windows'
proactor loop), which the Raspberry Pi target does not need.
(pyserial-asyncio is unmaintained and does this same thing.)

Flow: each readable event reads what the kernel holds (up to 4 KiB), feeds
the :class:`~firmware_bridge.FrameDecoder` and pushes blocks, vitals and gaps
into a LiveBuffer. When the buffer is half full (the pipeline is behind) the
source stops reading until it has drained to a quarter: the kernel's tty
buffer fills, and the sender is held back (a pty writer or a USB CDC device
blocks; a UART without RTS/CTS overruns, which then shows as CRC errors and
gaps, never as silent loss). This is what keeps ``edge demo --fast`` lossless.

Protocol handling (firmware_bridge/PROTOCOL.md):

* HELLO -> WELCOME with :func:`~firmware_bridge.choose_version`; the HELLO's
  channel table gives each stream its :class:`~edge.types.StreamKey`
  ``(device, name)``. The protocol has no stream label, so the name is
  ``"ecg"`` when a channel is an ECG lead (``MLII``, ``II``, ``V1``... or a
  name starting with ``ECG``: that is what selects the ECG processors), else
  the first channel's name in lower case (``"pleth"``); a name already taken
  by another stream of the same HELLO gets ``-<stream_id>`` appended. The
  device part is the configured name, else the HELLO's device id in hex.
* SAMPLES -> :class:`~edge.types.Block` in physical units (float32,
  invalid-sample code -> NaN), ``first_index`` = ``first_sample_index``,
  ``device_time`` = header timestamp minus the frame's duration (the device
  stamps a frame when it is built, after its last sample). A jump in
  ``first_sample_index`` is reported as a :class:`~edge.types.Gap` with reason
  ``corrupt`` if frames failed to decode since the stream's previous frame,
  else ``sequence``. Sequence numbers (u32, RFC 1982 comparison) count lost,
  duplicate and late frames in :attr:`SerialSource.link`.
* VITALS -> :class:`~edge.types.VitalSample` on stream ``(device, "vitals")``;
  STATUS is logged when it changes; LOG frames go to the debug log only:
  firmware text may carry patient data despite the rule that it must not.
* A read error, the port vanishing or end of file (a pty whose other side
  closed) is one WARNING line, a ``Gap(reason=disconnect, end_index=None)``
  per stream, then reconnect attempts with :class:`~edge.sources.backoff.Backoff`;
  ``usb:VID:PID[:SERIAL]`` is resolved again on every attempt, because a
  re-plugged device may come back under another name.
* Garbage, partial frames and a wrong baud rate are the decoder's counted
  errors, logged as one line per error class per minute; bytes arriving with
  no valid frame for ``no_frame_warn_s`` log "check the baud rate" once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import serial
import serial.tools.list_ports

import firmware_bridge as fb
from edge.clock import Clock, MonotonicClock
from edge.config import SourceConfig
from edge.errors import ConfigError, SourceError
from edge.sources.backoff import Backoff
from edge.sources.base import LiveBuffer, Source
from edge.sources.registry import register
from edge.trace.recordings import ECG_LEADS
from edge.types import (
    VITAL_UNITS,
    Block,
    ChannelSpec,
    Gap,
    GapReason,
    SourceItem,
    StreamKey,
    VitalKind,
    VitalSample,
)
from firmware_bridge.constants import SUPPORTED_VERSIONS

log = logging.getLogger(__name__)

# one read yields at most READ_CHUNK / 37 items (the smallest SAMPLES frame), fewer than the
# free half of the buffer when reading pauses: a burst cannot overflow it
READ_CHUNK = 4096
NO_FRAME_WARN_S = 5.0  # long enough for a device to boot and say HELLO
ERROR_LOG_INTERVAL_S = 60.0
STILL_DOWN_LOG_S = 600.0  # a link down for long is re-reported this often, not on every retry
MAX_TX_BUFFER = 64 * 1024

_VITAL_KINDS = {
    fb.VitalKind.HEART_RATE: VitalKind.HEART_RATE,
    fb.VitalKind.SPO2: VitalKind.SPO2,
    fb.VitalKind.RESP_RATE: VitalKind.RESP_RATE,
    fb.VitalKind.TEMPERATURE: VitalKind.TEMPERATURE,
    fb.VitalKind.BP_SYSTOLIC: VitalKind.SYSTOLIC_BP,
    fb.VitalKind.BP_DIASTOLIC: VitalKind.DIASTOLIC_BP,
    fb.VitalKind.BP_MEAN: VitalKind.MEAN_BP,
    fb.VitalKind.PULSE_RATE: VitalKind.PULSE_RATE,
}

#: What each decoder error class most likely means, for the one log line per minute.
ERROR_HINTS = {
    "crc_errors": "frames failed their CRC (line noise, lost bytes or a wrong baud rate)",
    "cobs_errors": "frames with broken COBS framing (lost bytes or a wrong baud rate)",
    "short_frames": "frames shorter than 20 bytes (truncated, or noise between frames)",
    "too_long": "runs of over 1029 bytes without a frame delimiter (wrong baud rate, or "
                "not firmware_bridge)",
    "bad_version": "frames of a protocol version not negotiated",
    "payload_errors": "frames with a malformed payload (firmware bug?)",
    "unknown_stream": "SAMPLES of a stream the HELLO did not declare",
    "format_mismatch": "SAMPLES whose format or channel count differ from the HELLO",
    "samples_before_hello": "SAMPLES before any HELLO (asked the device for one)",
}
_DECODER_ERRORS = ("crc_errors", "cobs_errors", "short_frames", "too_long", "bad_version",
                   "payload_errors")


# ------------------------------------------------------------------- port resolution

def parse_usb_spec(spec: str) -> tuple[int, int, str | None]:
    """``usb:VID:PID[:SERIAL]`` (hex ids) -> (vid, pid, serial or None)."""
    parts = spec.split(":", 3)
    if len(parts) < 3 or parts[0].lower() != "usb":
        raise SourceError(f"{spec!r}: expected usb:VID:PID[:SERIAL], e.g. usb:0483:5740")
    try:
        vid, pid = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        raise SourceError(f"{spec!r}: VID and PID are 4 hex digits, e.g. usb:0483:5740") from None
    if not (0 <= vid <= 0xFFFF and 0 <= pid <= 0xFFFF):
        raise SourceError(f"{spec!r}: VID and PID are 16-bit hex numbers")
    return vid, pid, (parts[3] if len(parts) == 4 and parts[3] else None)


def describe_port(p: Any) -> str:
    ids = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None else "no USB id"
    sn = f" serial {p.serial_number}" if p.serial_number else ""
    return f"{p.device} ({ids}{sn})"


def resolve_port(spec: str, ports: Iterable[Any] | None = None) -> str:
    """The device path for ``spec``: a path is returned as is; ``usb:VID:PID[:SERIAL]``
    is looked up in ``ports`` (default: ``serial.tools.list_ports.comports()``).

    Two devices matching is an error, not a guess: two identical wearables on
    one gateway are two patients, so the serial number must tell them apart.
    """
    if not spec.lower().startswith("usb:"):
        return spec
    vid, pid, serial_no = parse_usb_spec(spec)
    ports = list(serial.tools.list_ports.comports() if ports is None else ports)
    found = [p for p in ports if p.vid == vid and p.pid == pid
             and (serial_no is None or p.serial_number == serial_no)]
    if len(found) == 1:
        return str(found[0].device)
    want = f"{vid:04x}:{pid:04x}" + (f" with serial {serial_no}" if serial_no else "")
    if not found:
        usb = [describe_port(p) for p in ports if p.vid is not None]
        present = ", ".join(usb) if usb else "no USB serial ports"
        raise SourceError(f"no serial port {want} is connected (present: {present})")
    names = ", ".join(describe_port(p) for p in found)
    raise SourceError(f"{len(found)} ports match {want} ({names}): add the serial number, "
                      f"usb:{vid:04x}:{pid:04x}:SERIAL")


def stream_names(hello: fb.Hello) -> dict[int, str]:
    """Stream id -> stream name for a HELLO's channel table (see the module docstring)."""
    leads = {lead.upper() for lead in ECG_LEADS}
    out: dict[int, str] = {}
    for s in hello.streams:
        names = [c.name for c in s.channels]
        if any(n.upper() in leads or n.upper().startswith("ECG") for n in names):
            name = "ecg"
        else:
            name = (names[0].strip().lower() or f"stream{s.stream_id}").replace("/", "_")
        if name in out.values():
            name = f"{name}-{s.stream_id}"
        out[s.stream_id] = name
    return out


# ------------------------------------------------------------------------- logging

class RateLimitedLog:
    """At most one line per key per ``interval`` seconds; the next line says how many
    occurrences were folded into it."""

    def __init__(self, logger: logging.Logger, interval: float = ERROR_LOG_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self.interval = interval
        self._now = monotonic
        self._last: dict[str, float] = {}
        self._pending: dict[str, int] = {}

    def warning(self, key: str, count: int, msg: str, *args: Any) -> bool:
        """Count ``count`` occurrences of ``key``; log ``msg`` if the key is due."""
        self._pending[key] = self._pending.get(key, 0) + count
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        n = self._pending.pop(key)
        self._log.warning(msg + ": %d since the last report", *args, n)
        return True


# --------------------------------------------------------------------------- stats

@dataclass
class LinkStats:
    """Link-level counters of a serial source (decoder counters: :attr:`SerialSource.decoder`)."""

    connects: int = 0
    bytes_in: int = 0
    frames_in: int = 0
    frames_out: int = 0
    hellos: int = 0
    seq_lost: int = 0  # frames missing by sequence number (dropped or undecodable)
    seq_duplicate: int = 0
    seq_late: int = 0
    samples_frames: int = 0
    vitals_frames: int = 0
    status_frames: int = 0
    log_frames: int = 0
    paused: int = 0  # times reading paused because the pipeline was behind

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _StreamState:
    key: StreamKey
    stream: fb.Stream
    channels: tuple[ChannelSpec, ...]
    expected: int | None = None  # first_sample_index of the next frame, if known
    errors_at: int = 0  # decoder error total when this stream's last frame arrived
    after_hello: bool = True


class _Stop(Exception):
    pass


# -------------------------------------------------------------------------- source

class SerialSource(Source):
    """A firmware_bridge device on a serial port; see the module docstring.

    ``port`` is a path or ``usb:VID:PID[:SERIAL]``. With ``wait_for_device``
    the first open is retried like a reconnect (the daemon: the wearable may
    be plugged in later); otherwise a port that cannot be opened is a
    :class:`SourceError` at ``open()``. With ``reconnect=False`` the iteration
    ends when the link drops (recording one session; the demo), after
    everything received was yielded, and without a trailing disconnect gap
    (nothing follows it). ``device_clock_arrivals`` stamps ``arrival`` with
    the device's timestamps instead of the gateway clock: only for simulations
    running faster than real time (the demo), so that episode times do not
    depend on the speed; a real device's arrivals must be measured.
    ``on_message`` sees every decoded frame (``edge serial monitor``).
    """

    name = "serial"

    def __init__(self, port: str, *, baud: int = 921600, device: str = "",
                 clock: Clock | None = None, reconnect: bool = True,
                 wait_for_device: bool = False, backoff: Backoff | None = None,
                 buffer_size: int = 256, no_frame_warn_s: float = NO_FRAME_WARN_S,
                 error_log_interval_s: float = ERROR_LOG_INTERVAL_S,
                 device_clock_arrivals: bool = False,
                 on_message: Callable[[fb.Message], None] | None = None) -> None:
        super().__init__()
        if not port:
            raise SourceError("a serial source needs a port (a path or usb:VID:PID[:SERIAL])")
        self.port_spec = port
        self.baud = baud
        self.device = device
        self.clock: Clock = clock or MonotonicClock()
        self.reconnect = reconnect
        self.wait_for_device = wait_for_device
        self.backoff = backoff or Backoff()
        self.no_frame_warn_s = no_frame_warn_s
        self.device_clock_arrivals = device_clock_arrivals
        self.on_message = on_message
        self.decoder = fb.FrameDecoder()
        self.link = LinkStats()
        self.path: str | None = None  # the device path of the current connection
        self.status: fb.Status | None = None
        self.hello: fb.Hello | None = None
        self._buffer = LiveBuffer(buffer_size, self.stats)
        self._high = max(1, buffer_size // 2)
        self._low = max(0, buffer_size // 4)
        self._errlog = RateLimitedLog(log, error_log_interval_s)
        self._serial: serial.Serial | None = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = asyncio.Event()
        self._down_reason: str | None = None
        self._stopping = False
        self._paused = False
        self._table: fb.ChannelTable | None = None
        self._streams: dict[int, _StreamState] = {}
        self._version = fb.PROTOCOL_VERSION
        self._rx_seq: int | None = None
        self._tx_seq = 0
        self._tx_buf = bytearray()
        self._writing = False
        self._last_valid = 0.0
        self._bytes_since_valid = 0
        self._baud_warned = False
        self._last_nack = 0.0
        self._last_status_key: tuple[int, int, int] | None = None

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self.wait_for_device:
            self._connect()

    async def close(self) -> None:
        self._closed.set()
        self._teardown()
        self._wake()

    def stop(self) -> None:
        """End the iteration once what was already received has been yielded."""
        self._stopping = True
        self._teardown()
        self._wake()

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def link_stats(self) -> dict[str, Any]:
        """Link and decoder counters as one JSON-ready dict."""
        return {**self.link.as_dict(), "reconnects": self.stats.reconnects,
                "decoder": self.decoder.stats.as_dict(), "errors": dict(self.stats.errors)}

    # -- the iterator ---------------------------------------------------------------
    async def items(self) -> AsyncIterator[SourceItem]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        first = True
        while not self._closed.is_set() and not self._stopping:
            if self._serial is None:
                try:
                    await self._reconnect_loop(immediate=first)
                except _Stop:
                    return
            first = False
            while True:
                item = await self._next()
                if item is None:
                    break
                yield item
            if self._closed.is_set() or self._stopping or not self.reconnect:
                return
            for gap in self._disconnect_gaps():
                yield gap

    async def _next(self) -> SourceItem | None:
        """The next buffered item; None once the link is down (or stopping) and drained."""
        assert self._loop is not None
        while True:
            if self._buffer.qsize():
                item = await self._buffer.get()
                if self._paused and self._buffer.qsize() <= self._low:
                    self._resume_reading()
                return item
            if self._serial is None:
                return None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _reconnect_loop(self, immediate: bool) -> None:
        down_since = time.monotonic()
        last_report = down_since
        attempt = 0
        while True:
            if not immediate or attempt > 0:
                delay = self.backoff.next_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), delay)
            if self._closed.is_set() or self._stopping:
                raise _Stop
            attempt += 1
            try:
                self._connect()
            except SourceError as exc:
                if attempt == 1 and immediate and not self.wait_for_device:
                    raise
                now = time.monotonic()
                log.debug("serial %s: attempt %d failed: %s", self.port_spec, attempt, exc)
                if now - last_report >= STILL_DOWN_LOG_S:
                    last_report = now
                    log.warning("serial %s: still no device after %.0f s (%s); retrying",
                                self.port_spec, now - down_since, exc)
                continue
            if self.link.connects > 1:
                self.stats.reconnects += 1
                log.info("serial %s: reconnected on %s after %.1f s (attempt %d)",
                         self.port_spec, self.path, time.monotonic() - down_since, attempt)
            return

    # -- connection -----------------------------------------------------------------
    def _connect(self) -> None:
        path = resolve_port(self.port_spec)
        try:
            ser = serial.Serial(path, self.baud, timeout=0, write_timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SourceError(f"serial {self.port_spec}: cannot open {path}: {exc}") from exc
        fd = ser.fileno()
        os.set_blocking(fd, False)
        self._serial, self._fd, self.path = ser, fd, path
        self._down_reason = None
        self.decoder.reset()
        self._rx_seq = None
        self._tx_seq = 0
        self._tx_buf.clear()
        self._writing = False
        self._paused = False
        self._last_valid = time.monotonic()
        self._bytes_since_valid = 0
        self._baud_warned = False
        self.link.connects += 1
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        loop.add_reader(fd, self._on_readable)
        log.info("serial %s: opened %s at %d baud", self.port_spec, path, self.baud)

    def _teardown(self) -> None:
        ser, fd = self._serial, self._fd
        self._serial, self._fd = None, None
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
            if self._writing:
                self._loop.remove_writer(fd)
        self._writing = False
        self._paused = False
        if ser is not None:
            # the device may be gone already; nothing left to release then
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def _link_lost(self, reason: str) -> None:
        if self._serial is None:
            return
        self._teardown()
        self._down_reason = reason
        what = "reconnecting" if self.reconnect else "ending the stream"
        log.warning("serial %s: link lost (%s); %s", self.port_spec, reason, what)
        self._wake()

    def _disconnect_gaps(self) -> list[Gap]:
        now = self.clock.now()
        gaps = []
        for st in self._streams.values():
            start = st.expected if st.expected is not None else 0
            gaps.append(Gap(st.key, start, None, GapReason.DISCONNECT, now,
                            st.stream.sample_rate_hz))
            st.expected = None
            st.after_hello = True
        self.stats.gaps += len(gaps)
        return gaps

    def _pause_reading(self) -> None:
        if not self._paused and self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._paused = True
            self.link.paused += 1

    def _resume_reading(self) -> None:
        if self._paused and self._fd is not None and self._loop is not None:
            self._paused = False
            self._loop.add_reader(self._fd, self._on_readable)

    # -- receiving ------------------------------------------------------------------
    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._link_lost(f"read error: {exc.strerror or exc}")
            return
        if not data:
            self._link_lost("end of file: the port was closed or unplugged")
            return
        self.feed(data)
        self._wake()
        if self._buffer.qsize() >= self._high:
            self._pause_reading()

    def feed(self, data: bytes) -> None:
        """Decode ``data`` and queue what it yields (the reader's work; public for tests)."""
        now = self.clock.now()
        self.link.bytes_in += len(data)
        dstats = self.decoder.stats
        messages: list[tuple[fb.Message, int]] = []  # with the error total when decoded
        pos = 0
        # one frame per decoder call, so that an error is attributed to the right gap
        while pos < len(data):
            end = data.find(b"\x00", pos)
            end = len(data) if end < 0 else end + 1
            before = dstats.errors
            snapshot = None if before == 0 else [getattr(dstats, k) for k in _DECODER_ERRORS]
            for msg in self.decoder.feed(data[pos:end]):
                messages.append((msg, dstats.errors))
            if dstats.errors != before:
                for i, k in enumerate(_DECODER_ERRORS):
                    n = getattr(dstats, k) - (snapshot[i] if snapshot else 0)
                    if n:
                        self._count_error(k, n, getattr(dstats, k))
            pos = end
        mono = time.monotonic()
        if messages:
            self._last_valid = mono
            self._bytes_since_valid = 0
            self._baud_warned = False
            self.backoff.reset()  # a good connection: the next drop is retried quickly again
        else:
            self._bytes_since_valid += len(data)
            silent = mono - self._last_valid
            if silent >= self.no_frame_warn_s and not self._baud_warned:
                self._baud_warned = True
                log.warning("serial %s: no valid frame in %.1f s while %d bytes arrived: "
                            "check the baud rate (this end: %d)", self.port_spec, silent,
                            self._bytes_since_valid, self.baud)
        for msg, errors in messages:
            self.link.frames_in += 1
            if self.on_message is not None:
                self.on_message(msg)
            self._dispatch(msg, now, errors)

    def _count_error(self, kind: str, n: int, total: int) -> None:
        self.stats.errors[kind] = total if kind in _DECODER_ERRORS else \
            self.stats.errors.get(kind, 0) + n
        self._errlog.warning(kind, n, "serial %s: %s (%d in total)", self.port_spec,
                             ERROR_HINTS.get(kind, kind),
                             total if kind in _DECODER_ERRORS else self.stats.errors[kind])

    def _check_seq(self, msg: fb.Message) -> bool:
        """RFC 1982 comparison with the last seq; False for a duplicate or late frame."""
        if isinstance(msg, fb.Hello) or self._rx_seq is None:
            self._rx_seq = msg.seq
            return True
        d = (msg.seq - self._rx_seq) & 0xFFFFFFFF
        if d == 0:
            self.link.seq_duplicate += 1
            return False
        if d >= 0x80000000:
            self.link.seq_late += 1
            return False
        self.link.seq_lost += d - 1
        self._rx_seq = msg.seq
        return True

    def _dispatch(self, msg: fb.Message, now: float, errors: int) -> None:
        if not self._check_seq(msg):
            return
        if isinstance(msg, fb.Samples):
            self._on_samples(msg, now, errors)
        elif isinstance(msg, fb.Hello):
            self._on_hello(msg)
            return  # answered by WELCOME, not ACK
        elif isinstance(msg, fb.Vitals):
            self._on_vitals(msg, now)
        elif isinstance(msg, fb.Status):
            self._on_status(msg)
        elif isinstance(msg, fb.Log):
            self.link.log_frames += 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("device log [%s]: %s", _level_name(msg.level), msg.text)
        elif isinstance(msg, fb.TimeSyncRequest):
            t2 = time.time_ns() // 1000
            self._send(fb.TimeSyncResponse(t1=msg.t1, t2=t2, t3=time.time_ns() // 1000))
        if msg.flags & fb.Flags.ACK_REQUESTED and not isinstance(msg, fb.Ack | fb.Nack):
            self._send(fb.Ack(acked_seq=msg.seq, acked_type=msg.TYPE))

    def _on_hello(self, hello: fb.Hello) -> None:
        self.link.hellos += 1
        welcome = fb.choose_version(hello, gateway_time_us=time.time_ns() // 1000)
        self._send(welcome)  # before switching: WELCOME is readable at any version
        if welcome.result != fb.WelcomeResult.OK:
            self._errlog.warning("no_common_version", 1, "serial %s: device speaks protocol "
                                 "%d..%d, this gateway %s: refused", self.port_spec,
                                 hello.proto_min, hello.proto_max, sorted(SUPPORTED_VERSIONS))
            self._table = None
            return
        self._version = welcome.chosen_version
        same = (self.hello is not None and self.hello.device_id == hello.device_id
                and self.hello.streams == hello.streams)
        if same:
            for st in self._streams.values():
                st.after_hello = True
            return
        if self.hello is not None:
            log.info("serial %s: device introduced a new channel table", self.port_spec)
            for gap in self._disconnect_gaps():  # old streams end here
                self._push(gap)
        self.hello = hello
        self._table = fb.ChannelTable(hello)
        device = self.device or f"{hello.device_id:016x}"
        names = stream_names(hello)
        self._streams = {
            s.stream_id: _StreamState(StreamKey(device, names[s.stream_id]), s,
                                      tuple(ChannelSpec(c.name, c.unit) for c in s.channels),
                                      errors_at=self.decoder.stats.errors)
            for s in hello.streams
        }
        fw = ".".join(map(str, hello.fw_version))
        log.info("serial %s: device %s firmware %s, protocol %d, streams: %s", self.port_spec,
                 device, fw, self._version,
                 ", ".join(f"{st.key.stream} {st.stream.sample_rate_hz:g} Hz x"
                           f"{len(st.channels)}" for st in self._streams.values()))

    def _on_samples(self, msg: fb.Samples, now: float, errors: int) -> None:
        self.link.samples_frames += 1
        if self._table is None:
            self._count_error("samples_before_hello", 1, 0)
            mono = time.monotonic()
            if mono - self._last_nack >= 1.0:  # the device answers with a new HELLO
                self._last_nack = mono
                self._send(fb.Nack(acked_seq=msg.seq, acked_type=msg.TYPE,
                                   reason=fb.NackReason.NOT_READY))
            return
        st = self._streams.get(msg.stream_id)
        if st is None:
            self._count_error("unknown_stream", 1, 0)
            return
        try:
            data = fb.to_physical(msg, st.stream).astype(np.float32)
        except fb.PayloadError:
            self._count_error("format_mismatch", 1, 0)
            return
        fs = st.stream.sample_rate_hz
        first, n = msg.first_sample_index, msg.n_samples
        if st.expected is not None:
            if first > st.expected:
                reason = GapReason.CORRUPT if errors != st.errors_at else GapReason.SEQUENCE
                self.stats.gaps += 1
                self._push(Gap(st.key, st.expected, first, reason, now, fs))
            elif first < st.expected and st.after_hello:
                # sample counter went back after a HELLO: the device restarted
                self.stats.gaps += 1
                self._push(Gap(st.key, st.expected, None, GapReason.DISCONNECT, now, fs))
        st.after_hello = False
        st.errors_at = errors
        st.expected = first + n if st.expected is None else max(st.expected, first + n)
        device_time = msg.timestamp_us * 1e-6 - n / fs
        arrival = msg.timestamp_us * 1e-6 if self.device_clock_arrivals else now
        self.stats.blocks += 1
        self.stats.samples += n
        self._push(Block(st.key, st.channels, fs, msg.seq, first, device_time, arrival, data))

    def _on_vitals(self, msg: fb.Vitals, now: float) -> None:
        self.link.vitals_frames += 1
        device = self.device or (f"{self.hello.device_id:016x}" if self.hello else "serial")
        key = StreamKey(device, "vitals")
        t = msg.timestamp_us * 1e-6
        for v in msg.items:
            sample = vital_sample(v, key, t, t if self.device_clock_arrivals else now)
            if sample is None:
                self.stats.count_error("vital_skipped")
                continue
            self.stats.vitals += 1
            self._push(sample)

    def _on_status(self, msg: fb.Status) -> None:
        self.link.status_frames += 1
        self.status = msg
        key = (msg.battery_percent // 10 if msg.battery_percent != 255 else -1, msg.contact,
               msg.error_flags)
        if key != self._last_status_key:
            self._last_status_key = key
            batt = "unknown" if msg.battery_percent == 255 else f"{msg.battery_percent} %"
            try:
                contact = fb.ContactState(msg.contact).name.lower()
            except ValueError:
                contact = str(msg.contact)
            flags = (fb.StatusError(msg.error_flags).name or hex(msg.error_flags)
                     if msg.error_flags else "none")
            log.info("serial %s: device status: battery %s (%d mV), contact %s, flags %s",
                     self.port_spec, batt, msg.battery_mv, contact, flags)

    def _push(self, item: SourceItem) -> None:
        self._buffer.push(item)

    # -- sending --------------------------------------------------------------------
    def _send(self, msg: fb.Message) -> None:
        if self._fd is None:
            return
        msg = dataclasses.replace(msg, seq=self._tx_seq, version=self._version,
                                  timestamp_us=time.monotonic_ns() // 1000)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFFFFFF
        frame = fb.encode_frame(msg)
        if len(self._tx_buf) + len(frame) > MAX_TX_BUFFER:
            self.stats.count_error("tx_overflow")  # the device is not reading its port
            return
        self._tx_buf += frame
        self.link.frames_out += 1
        self._flush_tx()

    def _flush_tx(self) -> None:
        fd = self._fd
        if fd is None:
            return
        while self._tx_buf:
            try:
                n = os.write(fd, self._tx_buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._tx_buf.clear()  # the reader will notice the lost link
                break
            del self._tx_buf[:n]
        assert self._loop is not None
        if self._tx_buf and not self._writing:
            self._writing = True
            self._loop.add_writer(fd, self._flush_tx)
        elif not self._tx_buf and self._writing:
            self._writing = False
            self._loop.remove_writer(fd)


def _level_name(level: int) -> str:
    try:
        return fb.LogLevel(level).name
    except ValueError:
        return str(level)


_CONVERT = {
    (VitalKind.TEMPERATURE, fb.Unit.DEGF): lambda f: (f - 32.0) * 5.0 / 9.0,
    **{(k, fb.Unit.KPA): (lambda p: p * 7.500615758)
       for k in (VitalKind.SYSTOLIC_BP, VitalKind.DIASTOLIC_BP, VitalKind.MEAN_BP)},
}


def vital_sample(v: fb.Vital, key: StreamKey, device_time: float,
                 arrival: float) -> VitalSample | None:
    """A VITALS entry as a VitalSample in its canonical unit; None if it cannot be one
    (unknown kind or unit, or NaN: "not available")."""
    kind = _VITAL_KINDS.get(v.kind)  # type: ignore[call-overload]
    if kind is None or not np.isfinite(v.value):
        return None
    value = float(v.value)
    try:
        unit = fb.Unit(v.unit).ucum
    except ValueError:
        return None
    if unit != VITAL_UNITS[kind]:
        conv = _CONVERT.get((kind, fb.Unit(v.unit)))
        if conv is None:
            return None
        value = conv(value)
    quality = 1.0
    if v.flags & fb.VitalFlags.QUESTIONABLE:
        quality = 0.5
    if v.flags & fb.VitalFlags.CALIBRATING:
        quality = min(quality, 0.5)
    return VitalSample(key, kind, value, VITAL_UNITS[kind], device_time, arrival, quality)


def build_serial(cfg: SourceConfig, index: int) -> SerialSource:
    if not cfg.port:
        raise ConfigError(f"sources[{index}]: a serial source needs 'port' "
                          "(a path such as /dev/ttyACM0, or usb:VID:PID[:SERIAL])")
    return SerialSource(cfg.port, baud=cfg.baud, device=cfg.device, wait_for_device=True)


register("serial", build_serial)
