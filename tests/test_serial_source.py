"""The serial source over real pseudo-terminals, fed by the virtual device (no mocked port)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tty

import numpy as np
import pytest
from serial.tools.list_ports_common import ListPortInfo

import firmware_bridge as fb
from edge.errors import ConfigError, SourceError
from edge.sim.serial_device import VirtualSerialDevice, gap_ranges
from edge.sources.backoff import Backoff
from edge.sources.serial import SerialSource, resolve_port, stream_names
from edge.trace.format import read_trace
from edge.types import Block, Gap, GapReason, VitalKind, VitalSample
from tests.serial_helpers import DEMO_TRACE, session, write_trace


def blocks_of(items):
    return [i for i in items if isinstance(i, Block)]


def test_a_clean_session_over_a_pty_delivers_every_sample_exactly():
    device = VirtualSerialDevice(DEMO_TRACE, speed=None)
    items, src = asyncio.run(session(device, device="demo-wearable"))
    blocks = blocks_of(items)
    assert not [i for i in items if isinstance(i, Gap)]
    got = np.concatenate([b.data for b in blocks])
    idx = np.concatenate([np.arange(b.first_index, b.end_index) for b in blocks])
    _, trace_items = read_trace(DEMO_TRACE)
    trace = np.concatenate([b.data for b in trace_items if isinstance(b, Block)])
    plan = next(iter(device.plans.values()))
    assert np.array_equal(idx, np.arange(108000))  # every index once, in order
    assert got.dtype == np.float32
    assert np.array_equal(got, plan.physical(trace))  # bit-exact to what was sent
    assert np.max(np.abs(got - trace)) <= 1e-6  # the ADC grid (1/200 mV): lossless
    assert float(plan.scale[0]) == np.float32(1 / 200)
    assert blocks[0].key.device == "demo-wearable" and blocks[0].key.stream == "ecg"
    assert src.decoder.stats.errors == 0 and src.link.seq_lost == 0
    assert device.finished_ok


def test_dropped_and_corrupted_frames_are_exactly_the_reported_gaps(tmp_path):
    trace = write_trace(tmp_path / "t.vetrace", seconds=60, fs=250, n_channels=2)
    device = VirtualSerialDevice(trace, speed=None, drop=0.05, corrupt=0.05, seed=7)
    items, src = asyncio.run(session(device))
    gaps = [i for i in items if isinstance(i, Gap)]
    reported = [(g.start_index, g.end_index) for g in gaps]
    expected = gap_ranges(device.faults)
    n_corrupt = sum(f.kind == "corrupt" for f in device.faults)
    n_drop = sum(f.kind == "drop" for f in device.faults)
    assert n_corrupt >= 5 and n_drop >= 5
    assert reported == expected
    assert src.decoder.stats.errors == n_corrupt  # one decode error per corrupted frame
    assert src.link.seq_lost == n_corrupt + n_drop
    corrupt_starts = {f.start_index for f in device.faults if f.kind == "corrupt"}
    for g in gaps:  # the reason says which fault it was, where there was only one kind
        kinds = {f.kind for f in device.faults if g.start_index <= f.start_index < g.end_index}
        if kinds == {"drop"}:
            assert g.reason is GapReason.SEQUENCE
        elif kinds == {"corrupt"}:
            assert g.reason is GapReason.CORRUPT and g.start_index in corrupt_starts
    delivered = sum(b.n_samples for b in blocks_of(items))
    lost = sum(b - a for a, b in expected)
    assert delivered + lost == 60 * 250


def test_a_seeded_run_injects_the_same_faults_again(tmp_path):
    trace = write_trace(tmp_path / "t.vetrace", seconds=20)
    runs = []
    for _ in range(2):
        device = VirtualSerialDevice(trace, speed=None, drop=0.1, corrupt=0.1, seed=3)
        asyncio.run(session(device))
        runs.append(device.faults)
    assert runs[0] == runs[1] and runs[0]


def test_a_disconnect_is_one_warning_a_gap_and_a_reconnect_that_resumes(tmp_path, caplog):
    trace = write_trace(tmp_path / "t.vetrace", seconds=10)
    link = tmp_path / "wearable"
    device = VirtualSerialDevice(trace, speed=None, link=link, disconnect_after=3.0,
                                 reconnect_after=2.0)
    with caplog.at_level(logging.INFO, logger="edge.sources.serial"):
        items, src = asyncio.run(session(device, reconnect=True))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "link lost" in warnings[0].getMessage()
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1 and gaps[0].reason is GapReason.DISCONNECT
    assert gaps[0].end_index is None
    k = items.index(gaps[0])
    before, after = blocks_of(items[:k]), blocks_of(items[k + 1:])
    lost = [f for f in device.faults if f.kind == "disconnect"]
    assert len(lost) == 1  # whole frames (62 samples) from 3 s to 5 s of stream
    start, end = lost[0].start_index, lost[0].end_index
    assert abs(start - 750) <= 62 and abs(end - 1250) <= 62
    assert before[-1].end_index <= start and after[0].first_index == end
    assert after[-1].end_index == 2500  # data resumed to the end of the recording
    assert src.stats.reconnects == 1 and src.link.connects == 2 and device.stats.connects == 2


def test_garbage_and_a_wrong_baud_rate_are_counted_and_logged_once(caplog):
    async def scenario():
        master, slave = os.openpty()
        tty.setraw(slave)
        path = os.ttyname(slave)
        src = SerialSource(path, no_frame_warn_s=0.3)
        rng = random.Random(1)
        try:
            async with src:
                async def reader():
                    async for _ in src:
                        pass

                task = asyncio.create_task(reader())
                for _ in range(12):  # ~0.6 s of bytes that never frame-decode
                    noise = bytes(rng.randrange(256) for _ in range(600))
                    os.write(master, noise + b"\x00\x03\x01\x02\x00" + b"\xff" * 1100)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.1)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            os.close(master)
            os.close(slave)
        return src

    with caplog.at_level(logging.WARNING, logger="edge.sources.serial"):
        src = asyncio.run(scenario())
    stats = src.decoder.stats
    assert stats.errors > 12 and stats.frames_ok == 0
    assert stats.too_long >= 1 and stats.short_frames >= 1
    lines = [r.getMessage() for r in caplog.records]
    assert sum("check the baud rate" in m for m in lines) == 1
    for kind in ("too long", "shorter than 20", "CRC", "COBS"):
        assert sum(kind.lower() in m.lower() for m in lines) <= 1  # one line per class
    assert src.stats.errors["too_long"] == stats.too_long


def port(device, vid=None, pid=None, serial_number=None):
    p = ListPortInfo(device, skip_link_detection=True)
    p.vid, p.pid, p.serial_number = vid, pid, serial_number
    return p


PORTS = [port("/dev/ttyS0"), port("/dev/ttyACM0", 0x0483, 0x5740, "A1"),
         port("/dev/ttyACM1", 0x0483, 0x5740, "B2"), port("/dev/ttyUSB0", 0x0403, 0x6001, "F")]


def test_a_port_is_found_by_usb_identity_and_serial_number():
    assert resolve_port("/dev/ttyUSB3", PORTS) == "/dev/ttyUSB3"
    assert resolve_port("usb:0403:6001", PORTS) == "/dev/ttyUSB0"
    assert resolve_port("usb:0483:5740:B2", PORTS) == "/dev/ttyACM1"


def test_usb_resolution_errors_are_clear():
    with pytest.raises(SourceError, match=r"no serial port 1234:abcd .*present: /dev/ttyACM0"):
        resolve_port("usb:1234:abcd", PORTS)
    with pytest.raises(SourceError, match="no USB serial ports"):
        resolve_port("usb:1234:abcd", [port("/dev/ttyS0")])
    with pytest.raises(SourceError, match="2 ports match 0483:5740.*add the serial number"):
        resolve_port("usb:0483:5740", PORTS)
    with pytest.raises(SourceError, match="expected usb:VID:PID"):
        resolve_port("usb:0483", PORTS)
    with pytest.raises(SourceError, match="hex"):
        resolve_port("usb:zz:5740", PORTS)
    assert "present" in str(pytest.raises(SourceError, resolve_port, "usb:1:2").value)


def test_an_unopenable_port_is_a_source_error():
    async def scenario():
        async with SerialSource("/dev/does-not-exist"):
            pass

    with pytest.raises(SourceError, match="cannot open /dev/does-not-exist"):
        asyncio.run(scenario())


def test_the_registry_builds_a_serial_source_from_config():
    from edge.config import SourceConfig
    from edge.sources import registry

    src = registry.build(SourceConfig(type="serial", port="usb:0483:5740", device="w1"), 0)
    assert isinstance(src, SerialSource) and src.wait_for_device
    with pytest.raises(ConfigError, match="needs 'port'"):
        registry.build(SourceConfig(type="serial"), 1)


def test_backoff_grows_to_its_cap_with_bounded_jitter():
    b = Backoff(initial=0.5, maximum=8.0, factor=2.0, jitter=0.5, rng=random.Random(0))
    delays = [b.next_delay() for _ in range(200)]
    bases = [min(8.0, 0.5 * 2 ** i) for i in range(200)]
    assert all(0.5 * base <= d <= base for d, base in zip(delays, bases, strict=True))
    assert max(delays) <= 8.0 and max(delays[10:]) > 7.0 and min(delays[10:]) >= 4.0
    assert len(set(delays[10:])) > 100  # jittered, not lock-step
    b.reset()
    assert b.next_delay() <= 0.5
    assert Backoff(jitter=0.0).next_delay() == 0.5
    huge = Backoff(initial=1, maximum=30, jitter=0)
    huge.attempt = 10_000
    assert huge.next_delay() == 30
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)


def hello(*streams):
    return fb.Hello(device_id=0xAB, fw_version=(1, 2, 3), proto_min=1, proto_max=3,
                    streams=streams)


def ch(name, unit="mV"):
    return fb.Channel(name, unit, 0.005, 0.0)


def test_stream_names_come_from_the_channel_table():
    h = hello(fb.Stream(1, 1, 250.0, (ch("II"), ch("V1"))), fb.Stream(2, 1, 100.0, (ch("PLETH"),)),
              fb.Stream(3, 1, 100.0, (ch("PLETH"),)), fb.Stream(4, 2, 500.0, (ch("ECG-chest"),)))
    assert stream_names(h) == {1: "ecg", 2: "pleth", 3: "pleth-3", 4: "ecg-4"}


def feed_frames(src, *msgs):
    for seq, msg in enumerate(msgs):
        import dataclasses

        src.feed(fb.encode_frame(dataclasses.replace(msg, seq=seq)))


def test_vitals_status_and_logs_from_frames(caplog):
    async def scenario():
        src = SerialSource("/dev/null-not-opened", device="w")
        src._loop = asyncio.get_running_loop()
        feed_frames(
            src,
            hello(fb.Stream(1, 1, 250.0, (ch("II"),))),
            fb.Vitals(items=(fb.Vital(fb.VitalKind.SPO2, 97.0, fb.Unit.PERCENT),
                             fb.Vital(fb.VitalKind.TEMPERATURE, 98.6, fb.Unit.DEGF,
                                      fb.VitalFlags.QUESTIONABLE),
                             fb.Vital(99, 1.0, 1), fb.Vital(fb.VitalKind.HEART_RATE,
                                                            float("nan"), 1))),
            fb.Status(battery_percent=80, contact=fb.ContactState.POOR),
            fb.Status(battery_percent=80, contact=fb.ContactState.POOR),
            fb.Log(level=fb.LogLevel.INFO, text="patient 1234 HR 80"),
            fb.Samples(stream_id=1, first_sample_index=10, sample_format=1,
                       data=np.array([[200], [-32768]], np.int16)),
        )
        return src, [src._buffer._queue.get_nowait() for _ in range(src._buffer.qsize())]

    with caplog.at_level(logging.DEBUG, logger="edge.sources.serial"):
        src, items = asyncio.run(scenario())
    vitals = [i for i in items if isinstance(i, VitalSample)]
    assert [(v.kind, round(v.value, 2), v.unit) for v in vitals] == [
        (VitalKind.SPO2, 97.0, "%"), (VitalKind.TEMPERATURE, 37.0, "Cel")]
    assert vitals[1].quality < 1 and vitals[0].key.stream == "vitals"
    assert src.stats.errors["vital_skipped"] == 2
    block = [i for i in items if isinstance(i, Block)][0]
    assert block.first_index == 10 and block.data[0, 0] == np.float32(1.0)
    assert np.isnan(block.data[1, 0])
    status_lines = [r for r in caplog.records if "device status" in r.getMessage()]
    assert len(status_lines) == 1 and "contact poor" in status_lines[0].getMessage()
    assert src.link.status_frames == 2 and src.link.log_frames == 1
    for r in caplog.records:  # firmware log text only ever at debug level
        if "patient 1234" in r.getMessage():
            assert r.levelno == logging.DEBUG
