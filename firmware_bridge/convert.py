"""Raw SAMPLES values to physical units, using the channel table a device sent in HELLO.

Kept out of the codec: decoding never needs HELLO (SAMPLES frames are
self-describing in size), but turning counts into millivolts does. The
invalid-sample code becomes NaN so that downstream DSP cannot mistake it for
a huge negative value.
"""

from __future__ import annotations

import numpy as np

from .constants import INVALID_INT16, INVALID_INT24, SampleFormat
from .errors import PayloadError
from .messages import Hello, Samples, Stream

__all__ = ["ChannelTable", "to_physical"]

_INVALID = {SampleFormat.INT16: INVALID_INT16, SampleFormat.INT24: INVALID_INT24}


def to_physical(samples: Samples, stream: Stream, dtype: type = np.float64) -> np.ndarray:
    """Return ``raw * scale + offset`` per channel, shape (n_samples, n_channels), NaN if invalid.

    Raises PayloadError if the frame does not match the stream's declaration
    (format or channel count): scaling with the wrong table would be silent garbage.
    """
    if samples.sample_format != stream.sample_format:
        raise PayloadError(
            f"stream {stream.stream_id}: SAMPLES format {samples.sample_format}, "
            f"HELLO declared {stream.sample_format}"
        )
    if samples.n_channels != len(stream.channels):
        raise PayloadError(
            f"stream {stream.stream_id}: SAMPLES has {samples.n_channels} channels, "
            f"HELLO declared {len(stream.channels)}"
        )
    scale: np.ndarray = np.array([c.scale for c in stream.channels], dtype=dtype)
    offset: np.ndarray = np.array([c.offset for c in stream.channels], dtype=dtype)
    raw = samples.data
    out = raw.astype(dtype) * scale + offset
    out[raw == _INVALID[SampleFormat(samples.sample_format)]] = np.nan
    return out


class ChannelTable:
    """The streams of one device, looked up by stream id, for converting its SAMPLES.

    Built from the device's latest HELLO; a new HELLO (reboot, new firmware)
    must replace it, as stream ids, scales and units may have changed.
    """

    def __init__(self, hello: Hello) -> None:
        self.device_id = hello.device_id
        self._streams = {s.stream_id: s for s in hello.streams}

    def stream(self, stream_id: int) -> Stream:
        try:
            return self._streams[stream_id]
        except KeyError:
            raise PayloadError(f"stream {stream_id} not declared in HELLO") from None

    def units(self, stream_id: int) -> list[str]:
        """UCUM unit of each channel of the stream, in column order."""
        return [c.unit for c in self.stream(stream_id).channels]

    def to_physical(self, samples: Samples, dtype: type = np.float64) -> np.ndarray:
        return to_physical(samples, self.stream(samples.stream_id), dtype)
