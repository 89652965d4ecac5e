"""A virtual wearable on a pseudo-terminal, speaking the real firmware_bridge protocol.

:class:`VirtualSerialDevice` opens a pty pair (raw mode), publishes the slave
path (and keeps an optional symlink ``link`` pointing at it, because a
re-created pty gets a new ``/dev/pts/N``: tests and ``edge simulate serial
--link`` give the gateway the stable link path, which the serial source
resolves again on every reconnect), and streams a recording read with
:func:`~edge.sources.open.open_replay` (a vitals-edge trace, a WFDB record or
a CSV file) the way firmware would:

* HELLO (preceded by one 0x00 to close any partial frame), repeated every
  ``hello_interval`` seconds until the gateway answers WELCOME; streaming
  starts only then, and stops again (HELLO again) when the gateway closes
  its side or answers NACK NOT_READY. A pty shows both: reading the master
  fails with EIO while nobody holds the slave open. So samples are never
  written into the void (bytes written with no reader are discarded).
* SAMPLES of ``frame_s`` seconds (capped by the 990-byte payload), int16 by
  default. The scale is the signal's own quantisation step when it has one
  that fits (MIT-BIH: 1/200 mV, the ADC resolution: lossless up to float32
  rounding), else the signal range over the format's range, with the
  mid-range as offset. NaN becomes the invalid-sample code.
* VITALS for the recording's vital samples, STATUS every ``status_interval``
  seconds of stream.
* At the end, a STATUS with ACK_REQUESTED: the gateway's ACK proves it read
  every byte before the pty is closed (closing a pty master discards what the
  slave has not read yet).

Pacing: ``speed`` x real time against the device's own anchor (re-anchored
after waiting for a gateway), or ``speed=None`` for as fast as the link
takes it: writes wait for the pty to have room, so a gateway that pauses
reading holds the device back and nothing is lost.

Fault injection (SAMPLES frames only, so that each fault maps to exactly one
sample range; HELLO, STATUS and the final ACK exchange are never touched):
``drop`` (probability: the frame is not written but its ``seq`` is used, as
if lost on the wire), ``corrupt`` (probability: one byte of the encoded frame,
never its 0x00 delimiter, is replaced by another non-zero byte, so the
gateway decodes exactly one bad frame), ``disconnect_after`` (seconds of
stream: the pty is closed; with ``reconnect_after`` a new pty appears that
many stream seconds later, with the link re-pointed, else the device stops).
Frames falling in the disconnected window are recorded as ``disconnect``
faults. Every fault is a :class:`Fault` in :attr:`VirtualSerialDevice.faults`
(and a JSON line in ``faults_log``), with its stream and sample range, for
tests to compare with the gaps the gateway reports. ``seed`` makes it
repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import json
import logging
import os
import random
import time
import tty
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

import firmware_bridge as fb
from edge.sources.open import open_replay
from edge.types import Block, ChannelSpec, StreamKey, VitalKind, VitalSample

log = logging.getLogger(__name__)

_FB_VITAL = {
    VitalKind.HEART_RATE: (fb.VitalKind.HEART_RATE, fb.Unit.PER_MIN),
    VitalKind.SPO2: (fb.VitalKind.SPO2, fb.Unit.PERCENT),
    VitalKind.RESP_RATE: (fb.VitalKind.RESP_RATE, fb.Unit.PER_MIN),
    VitalKind.TEMPERATURE: (fb.VitalKind.TEMPERATURE, fb.Unit.CEL),
    VitalKind.SYSTOLIC_BP: (fb.VitalKind.BP_SYSTOLIC, fb.Unit.MM_HG),
    VitalKind.DIASTOLIC_BP: (fb.VitalKind.BP_DIASTOLIC, fb.Unit.MM_HG),
    VitalKind.MEAN_BP: (fb.VitalKind.BP_MEAN, fb.Unit.MM_HG),
    VitalKind.PULSE_RATE: (fb.VitalKind.PULSE_RATE, fb.Unit.PER_MIN),
}
_LIMITS = {fb.SampleFormat.INT16: 32767, fb.SampleFormat.INT24: 8388607}
_WIDTH = {fb.SampleFormat.INT16: 2, fb.SampleFormat.INT24: 3}
MAX_SAMPLE_BYTES = 990  # SAMPLES payload 1004 - 14 bytes of header


@dataclass(frozen=True)
class Fault:
    """One injected fault: which frame, which stream, which samples ``[start, end)``."""

    kind: str  # "drop", "corrupt", "disconnect" or "unsent" (the gateway went away)
    stream: str  # the recording's stream key, "device/stream"
    start_index: int
    end_index: int
    seq: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StreamPlan:
    """How one stream of the recording goes on the wire."""

    stream_id: int
    key: StreamKey
    fs: float
    channels: tuple[ChannelSpec, ...]
    sample_format: int
    scale: np.ndarray  # per channel, float32 as sent
    offset: np.ndarray
    frame_samples: int

    @property
    def wire(self) -> fb.Stream:
        return fb.Stream(self.stream_id, self.sample_format, self.fs, tuple(
            fb.Channel(c.name, c.unit, float(s), float(o))
            for c, s, o in zip(self.channels, self.scale, self.offset, strict=True)))

    def quantize(self, data: np.ndarray) -> np.ndarray:
        """Physical values -> raw integers of the wire format (NaN -> invalid code)."""
        x = np.asarray(data, dtype=np.float64)
        lim = _LIMITS[fb.SampleFormat(self.sample_format)]
        raw = np.round((x - self.offset.astype(np.float64)) / self.scale.astype(np.float64))
        bad = ~np.isfinite(raw)
        raw = np.clip(np.where(bad, 0, raw), -lim, lim).astype(np.int32)
        raw[bad] = -lim - 1
        return raw

    def physical(self, data: np.ndarray) -> np.ndarray:
        """What a gateway gets for ``data`` after the round trip (float32), for comparisons."""
        raw = self.quantize(data)
        msg = fb.Samples(stream_id=self.stream_id, first_sample_index=0,
                         sample_format=self.sample_format, data=raw)
        return fb.to_physical(msg, self.wire).astype(np.float32)


@dataclass
class DeviceStats:
    frames: int = 0
    samples_frames: int = 0
    samples_sent: int = 0
    hellos: int = 0
    welcomes: int = 0
    connects: int = 0
    bytes_out: int = 0


def quantization_step(x: np.ndarray) -> float | None:
    """The step all values are integer multiples of (an ADC's resolution), if there is one."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    u = np.unique(x)
    if u.size < 3:
        return None
    step = float(np.diff(u).min())
    if step <= 0:
        return None
    gain = 1.0 / step  # snap 0.0049999 to 1/200: ADC gains are whole units per mV
    if abs(gain - round(gain)) < 1e-3 * gain:
        step = 1.0 / round(gain)
    if np.max(np.abs(u / step - np.round(u / step))) > 0.01:
        return None
    return step


def plan_stream(stream_id: int, key: StreamKey, fs: float, channels: tuple[ChannelSpec, ...],
                sample: np.ndarray, lo: np.ndarray, hi: np.ndarray, sample_format: int,
                frame_s: float) -> StreamPlan:
    """Scale and offset per channel for ``sample_format`` (see the module docstring)."""
    lim = _LIMITS[fb.SampleFormat(sample_format)]
    scale = np.empty(len(channels), np.float32)
    offset = np.empty(len(channels), np.float32)
    for c in range(len(channels)):
        step = quantization_step(sample[:, c])
        lo_c = float(lo[c]) if np.isfinite(lo[c]) else 0.0
        hi_c = float(hi[c]) if np.isfinite(hi[c]) else 0.0
        if step is not None and max(abs(lo_c), abs(hi_c)) / step <= lim:
            scale[c], offset[c] = step, 0.0
        else:
            half = max((hi_c - lo_c) / 2.0, 1e-6)
            scale[c], offset[c] = half / (lim - 1), (hi_c + lo_c) / 2.0
    per_frame = MAX_SAMPLE_BYTES // (len(channels) * _WIDTH[fb.SampleFormat(sample_format)])
    n = max(1, min(per_frame, int(round(frame_s * fs))))
    return StreamPlan(stream_id, key, fs, channels, sample_format, scale, offset, n)


def _resolve(fut: asyncio.Future[None]) -> None:
    """Wake whoever awaits ``fut`` (a writer callback: the fd is writable again)."""
    if not fut.done():
        fut.set_result(None)


class VirtualSerialDevice:
    """A wearable on a pty streaming ``recording``; ``await run()`` streams it once.

    ``path`` is the pty slave (changes on reconnect), ``link`` the stable
    symlink if one was asked for; :meth:`port` returns what a gateway should open.
    ``on_finished`` is called once the gateway acknowledged the last frame,
    before the pty closes.
    """

    def __init__(self, recording: str | Path, *, speed: float | None = 1.0,
                 fs: float | None = None, channel: str | None = None,
                 link: str | Path | None = None, frame_s: float = 0.25,
                 sample_format: int = fb.SampleFormat.INT16, drop: float = 0.0,
                 corrupt: float = 0.0, disconnect_after: float | None = None,
                 reconnect_after: float | None = None, seed: int | None = 0,
                 device_id: int = 0x5645_4447_4500_0001, hello_interval: float = 0.5,
                 status_interval: float = 5.0, final_ack_timeout: float = 10.0,
                 corrupt_frames: set[int] | None = None,
                 capture: str | Path | None = None, faults_log: IO[str] | None = None,
                 on_finished: Callable[[], None] | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None: as fast as possible)")
        for name, p in (("drop", drop), ("corrupt", corrupt)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1]")
        self.recording = Path(recording)
        self.speed = speed
        self.fs = fs
        self.channel = channel
        self.link = Path(link) if link else None
        self.frame_s = frame_s
        self.sample_format = sample_format
        self.drop = drop
        self.corrupt = corrupt
        self.disconnect_after = disconnect_after
        self.reconnect_after = reconnect_after
        self.rng = random.Random(seed)
        self.device_id = device_id
        self.hello_interval = hello_interval
        self.status_interval = status_interval
        self.final_ack_timeout = final_ack_timeout
        self.corrupt_frames = corrupt_frames or set()  # SAMPLES frame numbers to corrupt
        self.capture_path = Path(capture) if capture else None
        self.faults_log = faults_log
        self.on_finished = on_finished
        self.faults: list[Fault] = []
        self.stats = DeviceStats()
        self.plans: dict[StreamKey, StreamPlan] = {}
        self.path: str | None = None
        self.ready = asyncio.Event()  # set once the pty exists
        self.finished_ok = False
        self._master: int | None = None
        self._peer = False
        self._welcomed = asyncio.Event()
        self._peer_seen = asyncio.Event()
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._decoder = fb.FrameDecoder()
        self._seq = 0
        self._version = fb.PROTOCOL_VERSION
        self._t0_dev = time.monotonic()  # the device's boot, for header timestamps
        self._anchor: tuple[float, float] | None = None  # (real, stream time)
        self._stream_t = 0.0
        self._next_status = 0.0
        self._samples_frame_no = 0
        self._state = "connected"  # "connected", "down" (disconnect window), "gone"
        self._disconnected = False
        self._capture: IO[bytes] | None = None
        self._probe_handle: asyncio.TimerHandle | None = None

    def port(self) -> str:
        return str(self.link) if self.link else str(self.path)

    # -- the pty --------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)  # held by the gateway only: EIO on the master says "nobody there"
        os.set_blocking(master, False)
        self._master = master
        self._peer = False
        self._welcomed.clear()
        self._decoder.reset()
        self.stats.connects += 1
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)
        self._probe()
        self.ready.set()
        log.info("virtual device on %s%s", self.path, f" (link {self.link})" if self.link else "")

    def _close_pty(self) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
            self._probe_handle = None
        if self._master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        self._peer = False
        self._welcomed.clear()

    def _probe(self) -> None:
        """Poll the master until a gateway holds the slave open, then watch it for reads."""
        self._probe_handle = None
        if self._master is None:
            return
        loop = asyncio.get_running_loop()
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            data = b""
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            self._probe_handle = loop.call_later(0.02, self._probe)
            return
        self._peer = True
        self._peer_seen.set()
        loop.add_reader(self._master, self._on_readable)
        if data:
            self._handle(data)

    def _on_readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            # the gateway closed its side: wait for it to come back, then HELLO again
            asyncio.get_running_loop().remove_reader(self._master)
            self._peer = False
            self._peer_seen.clear()
            self._welcomed.clear()
            self._probe()
            return
        self._handle(data)

    def _handle(self, data: bytes) -> None:
        for msg in self._decoder.feed(data):
            if isinstance(msg, fb.Welcome):
                if msg.result == fb.WelcomeResult.OK:
                    self._version = msg.chosen_version
                    self.stats.welcomes += 1
                    self._welcomed.set()
            elif isinstance(msg, fb.Nack) and msg.reason == fb.NackReason.NOT_READY:
                self._welcomed.clear()
            elif isinstance(msg, fb.Ack):
                fut = self._acks.pop(msg.acked_seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    # -- sending --------------------------------------------------------------------
    def _timestamp_us(self, stream_t: float | None = None) -> int:
        t = self._stream_t if stream_t is None else stream_t
        return int(round(t * 1e6)) + 1_000_000  # device booted 1 s before the recording began

    def _encode(self, msg: fb.Message, stream_t: float | None = None,
                flags: int = 0) -> tuple[int, bytes]:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        msg = dataclasses.replace(msg, seq=seq, version=self._version, flags=flags,
                                  timestamp_us=self._timestamp_us(stream_t))
        self.stats.frames += 1
        return seq, fb.encode_frame(msg)

    async def _write(self, data: bytes) -> bool:
        """Write all of ``data``, waiting for room; False if the gateway went away."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            if self._master is None or not self._peer:
                return False
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                fut: asyncio.Future[None] = loop.create_future()
                fd = self._master
                loop.add_writer(fd, _resolve, fut)
                try:
                    await asyncio.wait_for(fut, 0.2)
                except TimeoutError:
                    pass
                finally:
                    if self._master == fd:
                        loop.remove_writer(fd)
                continue
            if self._capture is not None:
                self._capture.write(view[:n])
            self.stats.bytes_out += n
            view = view[n:]
        return True

    async def _hello(self) -> None:
        streams = tuple(p.wire for p in self.plans.values())
        hello = fb.Hello(device_id=self.device_id, fw_version=(1, 0, 0), proto_min=1,
                         proto_max=1, streams=streams)
        _, frame = self._encode(hello)
        self.stats.hellos += 1
        await self._write(b"\x00" + frame)

    async def _session(self) -> None:
        """Make sure a gateway is there and welcomed us; HELLO until it does."""
        if self._welcomed.is_set() and self._peer:
            return
        waited = False
        while not (self._welcomed.is_set() and self._peer):
            waited = True
            if not self._peer:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._peer_seen.wait(), self.hello_interval)
                if not self._peer:
                    continue
            await self._hello()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._welcomed.wait(), self.hello_interval)
        if waited:
            self._anchor = None  # pacing restarts from now: waiting is not lost stream time

    async def _pace(self, t: float) -> None:
        self._stream_t = t
        if self.speed is None:
            return
        now = time.monotonic()
        if self._anchor is None:
            self._anchor = (now, t)
            return
        target = self._anchor[0] + (t - self._anchor[1]) / self.speed
        if target > now:
            await asyncio.sleep(target - now)

    def _fault(self, kind: str, plan: StreamPlan, start: int, end: int, seq: int) -> None:
        fault = Fault(kind, str(plan.key), start, end, seq)
        if self.faults and kind in ("disconnect", "unsent"):
            prev = self.faults[-1]
            if prev.kind == kind and prev.stream == fault.stream and prev.end_index == start:
                fault = Fault(kind, fault.stream, prev.start_index, end, prev.seq)
                self.faults[-1] = fault
                self._log_fault(fault, update=True)
                return
        self.faults.append(fault)
        self._log_fault(fault)

    def _log_fault(self, fault: Fault, update: bool = False) -> None:
        if self.faults_log is not None and not update:
            self.faults_log.write(json.dumps(fault.as_dict()) + "\n")
            self.faults_log.flush()

    async def _link_events(self, t: float) -> bool:
        """Apply disconnect/reconnect at stream time ``t``; True if the link is up."""
        if self._state == "connected" and self.disconnect_after is not None \
                and t >= self.disconnect_after and not self._disconnected:
            self._disconnected = True
            log.info("virtual device: disconnecting at %.2f s of stream", t)
            self._close_pty()
            self._state = "down" if self.reconnect_after is not None else "gone"
            with contextlib.suppress(FileNotFoundError):
                if self.link is not None:
                    self.link.unlink()
        if self._state == "down" and self.disconnect_after is not None \
                and self.reconnect_after is not None \
                and t >= self.disconnect_after + self.reconnect_after:
            log.info("virtual device: reconnecting at %.2f s of stream", t)
            self._open_pty()
            self._state = "connected"
        return self._state == "connected"

    async def _send_samples(self, plan: StreamPlan, first: int, data: np.ndarray) -> None:
        t_end = (first + data.shape[0]) / plan.fs
        await self._pace(t_end)
        if not await self._link_events(t_end):
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            self._fault("disconnect", plan, first, first + data.shape[0], seq)
            return
        await self._session()
        if t_end >= self._next_status:
            await self._status(t_end)
        msg = fb.Samples(stream_id=plan.stream_id, first_sample_index=first,
                         sample_format=plan.sample_format, data=plan.quantize(data))
        seq, frame = self._encode(msg, t_end)
        frame_no = self._samples_frame_no
        self._samples_frame_no += 1
        self.stats.samples_frames += 1
        end = first + data.shape[0]
        if self.drop and self.rng.random() < self.drop:
            self._fault("drop", plan, first, end, seq)
            return
        if frame_no in self.corrupt_frames or (self.corrupt and self.rng.random() < self.corrupt):
            i = self.rng.randrange(len(frame) - 1)  # never the delimiter
            bad = bytearray(frame)
            bad[i] = self.rng.choice([b for b in range(1, 256) if b != frame[i]])
            frame = bytes(bad)
            self._fault("corrupt", plan, first, end, seq)
        if await self._write(frame):
            self.stats.samples_sent += data.shape[0]
        else:
            self._fault("unsent", plan, first, end, seq)

    async def _status(self, t: float) -> None:
        self._next_status = t + self.status_interval
        _, frame = self._encode(self._status_msg(t), t)
        await self._write(frame)

    def _status_msg(self, t: float) -> fb.Status:
        battery = max(5, 100 - int(t // 600))  # -1 % per 10 min of stream
        return fb.Status(battery_percent=battery, contact=fb.ContactState.GOOD,
                         battery_mv=3700 + 5 * battery)

    async def _send_vital(self, v: VitalSample) -> None:
        code = _FB_VITAL.get(v.kind)
        if code is None or self._state != "connected":
            return
        await self._pace(max(self._stream_t, v.device_time))
        await self._session()
        _, frame = self._encode(fb.Vitals(items=(fb.Vital(int(code[0]), float(v.value),
                                                          int(code[1])),)))
        await self._write(frame)

    async def _finish(self) -> None:
        if self._state != "connected":
            return
        await self._session()
        seq, frame = self._encode(self._status_msg(self._stream_t), flags=fb.Flags.ACK_REQUESTED)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[seq] = fut
        await self._write(frame)
        try:
            await asyncio.wait_for(fut, self.final_ack_timeout)
            self.finished_ok = True
        except TimeoutError:
            log.warning("virtual device: the gateway did not acknowledge the last frame")
        if self.on_finished is not None:
            self.on_finished()

    # -- the recording --------------------------------------------------------------
    async def _scan(self) -> None:
        """First pass: the streams, their ranges and quantisation (HELLO needs them upfront)."""
        src = open_replay(self.recording, fs=self.fs, channel=self.channel, speed=None)
        info: dict[StreamKey, dict[str, Any]] = {}
        async with src:
            async for item in src:
                if not isinstance(item, Block):
                    continue
                d = info.setdefault(item.key, {"fs": item.fs, "channels": item.channels,
                                               "lo": None, "hi": None, "sample": []})
                with np.errstate(all="ignore"), contextlib.suppress(ValueError):
                    lo, hi = np.nanmin(item.data, axis=0), np.nanmax(item.data, axis=0)
                    d["lo"] = lo if d["lo"] is None else np.fmin(d["lo"], lo)
                    d["hi"] = hi if d["hi"] is None else np.fmax(d["hi"], hi)
                if sum(len(s) for s in d["sample"]) < 100_000:
                    d["sample"].append(item.data)
        for sid, (key, d) in enumerate(info.items(), start=1):
            nch = len(d["channels"])
            lo = d["lo"] if d["lo"] is not None else np.zeros(nch)
            hi = d["hi"] if d["hi"] is not None else np.zeros(nch)
            self.plans[key] = plan_stream(sid, key, d["fs"], d["channels"],
                                          np.concatenate(d["sample"]), lo, hi,
                                          self.sample_format, self.frame_s)

    async def run(self) -> DeviceStats:
        """Stream the recording once; close the pty (and remove the link) at the end."""
        await self._scan()
        if not self.plans:
            raise ValueError(f"{self.recording}: no waveform streams to send")
        if self.capture_path is not None:
            self._capture = open(self.capture_path, "wb")  # noqa: SIM115 - closed below
        self._open_pty()
        try:
            src = open_replay(self.recording, fs=self.fs, channel=self.channel, speed=None)
            async with src:
                async for item in src:
                    if self._state == "gone":
                        break
                    if isinstance(item, Block):
                        plan = self.plans[item.key]
                        n = plan.frame_samples
                        for i in range(0, item.n_samples, n):
                            await self._send_samples(plan, item.first_index + i,
                                                     item.data[i:i + n])
                    elif isinstance(item, VitalSample):
                        await self._send_vital(item)
            await self._finish()
        finally:
            self._close_pty()
            if self.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.link.unlink()
            if self._capture is not None:
                self._capture.close()
        return self.stats


def gap_ranges(faults: list[Fault], stream: str | None = None) -> list[tuple[int, int]]:
    """Sample ranges lost to drop/corrupt faults, adjacent ranges merged (what the gateway's
    gaps should be)."""
    ranges = sorted((f.start_index, f.end_index) for f in faults
                    if f.kind in ("drop", "corrupt") and (stream is None or f.stream == stream))
    merged: list[tuple[int, int]] = []
    for a, b in ranges:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged

