"""The errors this package raises on purpose, and nothing else.

Callers catch :class:`BridgeError` for "a firmware frame or message was refused".
The subclasses map one-to-one onto the counters of :class:`~firmware_bridge.framing.DecoderStats`,
so the streaming decoder can count what the single-frame functions would raise.
Messages are one line, say what was expected, and never contain sample values
(they can be patient data).
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "CobsError",
    "CrcError",
    "FrameError",
    "FrameTooLongError",
    "FrameTooShortError",
    "PayloadError",
    "UnknownTypeError",
    "VersionError",
]


class BridgeError(Exception):
    """Base class of every error raised on purpose by firmware_bridge."""


class FrameError(BridgeError):
    """A frame could not be taken off the wire (framing, size, integrity, version)."""


class CobsError(FrameError):
    """The bytes between two 0x00 delimiters are not valid COBS (a block runs past the end)."""


class FrameTooLongError(FrameError):
    """A frame exceeds the maximum decoded size (1024 bytes) or cannot be encoded within it."""


class FrameTooShortError(FrameError):
    """A frame is shorter than header + CRC (20 bytes): truncated or noise."""


class CrcError(FrameError):
    """The CRC-32C over header and payload does not match the trailer."""


class VersionError(FrameError):
    """The frame's protocol version is not one this decoder accepts."""


class UnknownTypeError(FrameError):
    """The message type is not defined by this implementation.

    Not a fault: the streaming decoder skips such frames (forward compatibility)
    and only counts them; only the single-frame ``decode_frame`` raises it.
    """


class PayloadError(BridgeError):
    """A payload of a known type is malformed, or a message cannot be encoded as asked."""
