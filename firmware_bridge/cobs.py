"""Consistent Overhead Byte Stuffing (COBS) with 0x00 as the frame delimiter.

Why COBS: after encoding, 0x00 never occurs inside a frame, so a receiver that
lost sync (noise, dropped bytes, a reset MCU) is back in step at the very next
0x00 - no escape state to confuse, unlike SLIP, and no length field whose
corruption swallows the following frames, unlike length-prefix framing. The
overhead is bounded: at most one byte per 254 bytes of data (5 bytes for a
1024-byte frame), whatever the data are.

Encoding is the minimal form (no trailing 0x01 block when the data end with a
full 254-byte block), byte-identical to the C codec in ``c/fb_protocol.c``.
The loops run per block (up to 254 bytes), not per byte, using slicing.
"""

from __future__ import annotations

from .errors import CobsError, FrameTooLongError

__all__ = ["decode", "encode", "max_encoded_len"]


def max_encoded_len(n: int) -> int:
    """Upper bound of ``len(encode(data))`` for ``len(data) == n`` (no delimiter)."""
    return n + (n + 253) // 254 if n else 1


def encode(data: bytes | bytearray | memoryview) -> bytes:
    """COBS-encode ``data``; the result contains no 0x00 (the delimiter is not added)."""
    out = bytearray()
    pieces = bytes(data).split(b"\x00")
    last = len(pieces) - 1
    for k, piece in enumerate(pieces):
        pos, n = 0, len(piece)
        while n - pos >= 254:
            out.append(0xFF)
            out += piece[pos : pos + 254]
            pos += 254
        if k == last and n and pos == n:
            break  # minimal form: a final full block needs no 0x01 terminator block
        out.append(n - pos + 1)
        out += piece[pos:]
    return bytes(out)


def decode(
    data: bytes | bytearray | memoryview, max_len: int | None = None
) -> bytes:
    """Decode one COBS frame (without its 0x00 delimiter).

    Raises :class:`CobsError` if a 0x00 is present or a block runs past the end.
    With ``max_len``, raises :class:`~firmware_bridge.errors.FrameTooLongError`
    if the output exceeds it - judged as the C byte-by-byte decoder does (bytes
    are counted as they would arrive), so both count the same error for the
    same bytes.

    Fast path: without 0xFF codes the output is the input with the first code
    byte dropped and every later code byte replaced by 0x00, so one pass over
    the code bytes (not the data bytes) suffices.
    """
    src = bytes(data)
    n = len(src)
    if n == 0:
        return b""
    if b"\x00" in src:
        raise CobsError("0x00 inside a COBS frame")
    buf = bytearray(src)
    i = 0
    code = src[0]
    while True:
        if code == 0xFF:
            return _decode_blocks(src, max_len)
        j = i + code
        if j >= n:
            break
        code = src[j]
        buf[j] = 0
        i = j
    if max_len is not None and n - 1 > max_len:
        raise FrameTooLongError(f"decoded frame longer than {max_len} bytes")
    if j > n:
        raise CobsError("COBS block runs past the end of the frame")
    del buf[0]
    return bytes(buf)


def _decode_blocks(src: bytes, max_len: int | None) -> bytes:
    """General decoder (any codes), one slice per block; ``src`` has no 0x00."""
    n = len(src)
    out = bytearray()
    i = 0
    while i < n:
        code = src[i]
        j = i + code
        if j > n:
            if max_len is not None and len(out) + (n - i - 1) > max_len:
                raise FrameTooLongError(f"decoded frame longer than {max_len} bytes")
            raise CobsError("COBS block runs past the end of the frame")
        out += src[i + 1 : j]
        if code != 0xFF and j < n:
            out.append(0)
        if max_len is not None and len(out) > max_len:
            raise FrameTooLongError(f"decoded frame longer than {max_len} bytes")
        i = j
    return bytes(out)
