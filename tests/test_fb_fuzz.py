"""Fuzz: over a million random and mutated frames into the Python streaming decoder.

Mutations: bit flips, truncations, insertions (0x00 included), duplicated
delimiters, dropped delimiters, random garbage. The decoder must never raise,
never hang (a watchdog alarm fails the test), keep its buffer bounded, and
still decode every frame that the mutations left intact.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from firmware_bridge import (
    Ack,
    FrameDecoder,
    Log,
    Message,
    Samples,
    Status,
    TimeSyncRequest,
    Vital,
    Vitals,
    encode_frame,
)
from firmware_bridge.constants import MAX_ENCODED_SIZE

N_FRAMES = 1_000_000
CHUNK = 25_000  # frames per feed() call: large chunks keep Python overhead per byte low
WATCHDOG_S = 300


def _pool(rng: np.random.Generator) -> list[bytes]:
    frames: list[Message] = []
    for i in range(120):
        frames.append(Status(seq=i, battery_percent=int(rng.integers(0, 101)),
                             error_flags=int(rng.integers(0, 2**32))))
        frames.append(Ack(seq=i, acked_seq=int(rng.integers(0, 2**32)), acked_type=0x10))
        frames.append(TimeSyncRequest(seq=i, t1=int(rng.integers(0, 2**63))))
        nch, n = int(rng.integers(1, 9)), int(rng.integers(1, 30))
        fmt = int(rng.integers(1, 3))
        lim = 2**15 if fmt == 1 else 2**23
        frames.append(Samples(seq=i, stream_id=1, first_sample_index=i, sample_format=fmt,
                              data=rng.integers(-lim, lim, (n, nch))))
        frames.append(Vitals(seq=i, items=tuple(Vital(1, float(v), 1)
                                                for v in rng.normal(70, 5, int(rng.integers(4))))))
        frames.append(Log(seq=i, level=1, text="x" * int(rng.integers(0, 40))))
    return [encode_frame(m) for m in frames]


def _mutated_stream(rng: np.random.Generator, pool: list[bytes], count: int,
                    ) -> tuple[bytes, int]:
    """``count`` frames, about half of them mutated; returns (bytes, frames surely intact)."""
    picks = rng.integers(0, len(pool), count)
    kinds = rng.integers(0, 14, count)  # 0..6 intact, 7..13 one mutation each
    positions = rng.random(count)
    noise = rng.integers(0, 256, 64 * count, dtype=np.uint8).tobytes()
    parts: list[bytes] = []
    intact = 0
    previous_dropped = False
    for i in range(count):
        frame = pool[picks[i]]
        body = frame[:-1]
        kind = kinds[i]
        at = int(positions[i] * len(body))
        junk = noise[64 * i : 64 * i + 1 + (at % 63)]
        if kind <= 6:
            out = frame
        elif kind == 7:  # flip one to three bits
            b = bytearray(body)
            for k in range(1 + at % 3):
                j = (at + 37 * k) % len(b)
                b[j] ^= 1 << ((at + k) % 8)
            out = bytes(b) + b"\x00"
        elif kind == 8:  # truncation (strictly shorter)
            out = body[: min(at, len(body) - 1)] + b"\x00"
        elif kind == 9:  # insertion of random bytes, 0x00 included
            out = body[:at] + junk + body[at:] + b"\x00"
        elif kind == 10:  # duplicated delimiters around an intact frame: harmless
            out = b"\x00" * (1 + at % 3) + frame + b"\x00" * (at % 2)
        elif kind == 11:  # delimiter dropped: merges with the next frame
            out = body
        elif kind == 12:  # random garbage instead of a frame
            out = junk + b"\x00"
        else:  # a byte replaced by a random one
            b = bytearray(body)
            b[at] = (b[at] + 1 + noise[64 * i] % 255) % 256
            out = bytes(b) + b"\x00"
        if (kind <= 6 or kind == 10) and not previous_dropped:
            intact += 1
        previous_dropped = kind == 11
        parts.append(out)
    parts.append(b"\x00")  # close a trailing merged frame
    return b"".join(parts), intact


def _chunks(seed: int) -> Iterator[tuple[bytes, int]]:
    rng = np.random.default_rng(seed)
    pool = _pool(rng)
    for _ in range(N_FRAMES // CHUNK):
        yield _mutated_stream(rng, pool, CHUNK)


@pytest.fixture
def watchdog() -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise TimeoutError(f"decoder fuzz did not finish in {WATCHDOG_S} s (hang?)")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(WATCHDOG_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_decoder_survives_a_million_mutated_frames(watchdog: None) -> None:
    dec = FrameDecoder()
    fed = intact = decoded = 0
    nbytes = 0
    t_feed = 0.0
    t0 = time.perf_counter()
    for stream, sure in _chunks(seed=20261125):
        # Feed in uneven slices so frames also straddle feed() calls.
        cuts = [0, len(stream) // 3, len(stream) // 3 + 7, len(stream)]
        t = time.perf_counter()
        for a, b in zip(cuts, cuts[1:], strict=False):
            decoded += len(dec.feed(stream[a:b]))
            assert dec.buffered <= MAX_ENCODED_SIZE
        t_feed += time.perf_counter() - t
        fed += CHUNK
        intact += sure
        nbytes += len(stream)
    total = time.perf_counter() - t0
    s = dec.stats
    print(f"\nfuzz: {fed} frames ({nbytes / 1e6:.1f} MB) in {total:.1f} s "
          f"(decoder {t_feed:.1f} s); {s}")
    assert fed >= 1_000_000
    assert decoded == s.frames_ok
    assert intact <= s.frames_ok <= fed
    assert s.errors > fed // 4
    assert s.bytes_discarded < nbytes


def test_pure_random_bytes_never_raise() -> None:
    rng = np.random.default_rng(7)
    dec = FrameDecoder()
    for _ in range(40):
        data = rng.integers(0, 256, 250_000, dtype=np.uint8).tobytes()
        dec.feed(data)  # a CRC-valid accident would be allowed; an exception is not
        assert dec.buffered <= MAX_ENCODED_SIZE
    assert dec.stats.errors > 0
