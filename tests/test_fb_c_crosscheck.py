"""The C codec (firmware_bridge/c) against the Python codec, byte for byte, both directions.

The harness is compiled with gcc -std=c99 -Wall -Wextra -Werror -pedantic into a
temporary directory, with AddressSanitizer and UBSan when this machine supports
them. Skipped (with the reason) only when gcc is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fb_fuzz import _mutated_stream, _pool
from test_fb_strategies import messages

import firmware_bridge
from firmware_bridge import FrameDecoder, Message, decode_frame, encode_frame
from firmware_bridge import constants as C
from firmware_bridge.vectorfmt import format_message, parse_line, parse_message

C_DIR = Path(firmware_bridge.__file__).with_name("c")
VECTORS = Path(firmware_bridge.__file__).with_name("vectors") / "vectors.txt"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed: the C codec cannot be cross-checked here")
    return gcc


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fb_vectors binary, sanitized if this machine can run sanitized programs."""
    gcc = _gcc()
    out = tmp_path_factory.mktemp("fb_c")
    sources = [str(C_DIR / "fb_vectors.c"), str(C_DIR / "fb_protocol.c")]
    exe = out / "fb_vectors_asan"
    built = subprocess.run([gcc, *STRICT, *SANITIZE, "-o", str(exe), *sources],
                           capture_output=True, text=True)
    if built.returncode == 0:
        probe = subprocess.run([str(exe)], capture_output=True, text=True)
        if probe.returncode == 2 and "usage" in probe.stderr:
            return exe
    exe = out / "fb_vectors"
    subprocess.run([gcc, *STRICT, "-o", str(exe), *sources], check=True)
    return exe


def _run(harness: Path, *args: str, stdin: str = "") -> str:
    proc = subprocess.run([str(harness), *args], input=stdin, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_library_compiles_strict_c99_without_malloc_or_stdio(tmp_path: Path) -> None:
    gcc = _gcc()
    obj = tmp_path / "fb_protocol.o"
    extra = ["-Wconversion", "-Wsign-conversion", "-Wshadow"]  # MCU-style integer hygiene
    subprocess.run([gcc, *STRICT, *extra, "-c", str(C_DIR / "fb_protocol.c"), "-o", str(obj)],
                   check=True)
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed: cannot list the library's undefined symbols")
    undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    names = {s for s in undefined if s not in ("U", "w")}
    assert names <= {"memcpy", "memset", "_GLOBAL_OFFSET_TABLE_"}, names


def test_c_header_numbers_match_python_constants() -> None:
    header = (C_DIR / "fb_protocol.h").read_text()
    defines = dict(re.findall(r"#define (FB_\w+) (\d+)u?\b", header))
    assert int(defines["FB_PROTOCOL_VERSION"]) == C.PROTOCOL_VERSION
    assert int(defines["FB_HEADER_SIZE"]) == C.HEADER_SIZE
    assert int(defines["FB_CRC_SIZE"]) == C.CRC_SIZE
    assert int(defines["FB_MAX_FRAME_SIZE"]) == C.MAX_FRAME_SIZE
    enums = {name: int(value, 0) for name, value in
             re.findall(r"\b(FB_[A-Z0-9_]+) = (0x[0-9A-Fa-f]+|\d+)", header)}
    tables = [("FB_MSG_", C.MsgType), ("FB_FMT_", C.SampleFormat), ("FB_VITAL_", C.VitalKind),
              ("FB_UNIT_", C.Unit), ("FB_CONTACT_", C.ContactState), ("FB_NACK_", C.NackReason),
              ("FB_LOG_", C.LogLevel), ("FB_WELCOME_", C.WelcomeResult),
              ("FB_STATUS_", C.StatusError), ("FB_FLAG_", C.Flags)]
    for prefix, enum in tables:
        for member in enum:
            assert member.name is not None
            key = prefix + member.name
            if prefix == "FB_VITAL_" and key not in enums:
                key = "FB_VITAL_" + member.name  # flags share the prefix
            assert enums.get(key) == int(member), key
    assert enums["FB_VITAL_QUESTIONABLE"] == C.VitalFlags.QUESTIONABLE


def test_c_harness_checks_every_shared_vector(harness: Path) -> None:
    out = _run(harness, "check", str(VECTORS))
    n = sum(1 for line in VECTORS.read_text().splitlines() if line[:1] in "VR")
    assert f"{n} vectors checked, 0 failures" in out


def test_c_encoder_output_equals_python_for_every_vector(harness: Path) -> None:
    vectors = {v.name: v for v in map(parse_line, VECTORS.read_text().splitlines()) if v}
    lines = _run(harness, "encode", str(VECTORS)).splitlines()
    assert len(lines) == sum(1 for v in vectors.values() if v.kind == "V")
    for line in lines:
        name, hexed = line.split()
        assert bytes.fromhex(hexed) == vectors[name].wire, name


def _as_text(msg: Message) -> str:
    return format_message(msg)  # bit-exact floats, so NaN compares equal too


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(msgs=st.lists(messages, min_size=1, max_size=40))
def test_python_encoded_random_messages_decode_in_c(harness: Path, msgs: list[Message]) -> None:
    stdin = "\n".join(encode_frame(m).hex() for m in msgs) + "\n"
    out = _run(harness, "decode", stdin=stdin).splitlines()
    frames = [line[2:] for line in out if line.startswith("F ")]
    assert len(frames) == len(msgs)
    for msg, text in zip(msgs, frames, strict=True):
        assert _as_text(parse_message(text.split())) == _as_text(msg)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(msgs=st.lists(messages, min_size=1, max_size=40))
def test_c_encoded_random_messages_decode_in_python(harness: Path, msgs: list[Message],
                                                    tmp_path_factory: pytest.TempPathFactory,
                                                    ) -> None:
    path = tmp_path_factory.mktemp("desc") / "random.txt"
    path.write_text("".join(f"V m{i} {format_message(m)}\n" for i, m in enumerate(msgs)))
    out = _run(harness, "encode", str(path)).splitlines()
    assert len(out) == len(msgs)
    for msg, line in zip(msgs, out, strict=True):
        wire = bytes.fromhex(line.split()[1])
        assert wire == encode_frame(msg)
        assert _as_text(decode_frame(wire[:-1])) == _as_text(msg)


def test_c_and_python_decoders_agree_on_corrupted_streams(harness: Path) -> None:
    rng = np.random.default_rng(99)
    pool = _pool(rng)
    streams = [_mutated_stream(rng, pool, 400)[0] for _ in range(25)]
    streams.append(rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes() + b"\x00")
    streams.append(b"\xff" * 5000 + b"\x00" + pool[0])
    out = _run(harness, "decode", stdin="".join(s.hex() + "\n" for s in streams)).splitlines()
    blocks: list[list[str]] = [[]]
    for line in out:
        blocks[-1].append(line)
        if line.startswith("S "):
            blocks.append([])
    assert len(blocks) - 1 == len(streams)
    for stream, block in zip(streams, blocks, strict=False):
        dec = FrameDecoder()
        msgs = dec.feed(stream)
        c_stats = {k: int(v) for k, v in (t.split("=") for t in block[-1].split()[1:])}
        assert c_stats.pop("capacity_errors") == 0
        assert c_stats == dec.stats.as_dict()
        c_frames = [line[2:] for line in block[:-1]]
        assert c_frames == [_as_text(m) for m in msgs]
