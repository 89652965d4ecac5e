"""The vitals-edge vendor waveform service: firmware_bridge frames over GATT notifications.

Service ``8a3c0001-4f1e-4d2a-9b7e-5c6d7e8f9a0b`` has two characteristics:

* **data** ``8a3c0002-...`` (notify): the device's byte stream of COBS-encoded
  firmware_bridge frames, each ending in 0x00 (PROTOCOL.md section 1), cut into
  notifications of at most ATT_MTU - 3 bytes with no other header. A frame may
  span notifications and a notification may hold several frames: the receiver
  feeds every notification into one :class:`~firmware_bridge.FrameDecoder`,
  which reassembles at the 0x00 delimiters whatever the MTU. A lost
  notification costs the frame(s) it was part of (COBS/CRC error), resynchronised
  at the next 0x00; the SAMPLES sample index makes the loss an exact gap.
* **control** ``8a3c0003-...`` (write without response): frames from the gateway
  (WELCOME, ACK, TIME_SYNC), in the same encoding.

Session: the device sends a 0x00 then HELLO each time notifications are enabled
(a (re)connection), then streams; the gateway answers WELCOME on control. A
device keeps its sample counter running while disconnected (it does not
buffer), so a reconnection shows the lost samples as a jump of
``first_sample_index``.
"""

from __future__ import annotations

VENDOR_SERVICE = "8a3c0001-4f1e-4d2a-9b7e-5c6d7e8f9a0b"
VENDOR_DATA = "8a3c0002-4f1e-4d2a-9b7e-5c6d7e8f9a0b"
VENDOR_CONTROL = "8a3c0003-4f1e-4d2a-9b7e-5c6d7e8f9a0b"
DEFAULT_ATT_MTU = 23


def chunk(stream: bytes, mtu: int = DEFAULT_ATT_MTU) -> list[bytes]:
    """Cut encoded frames into notification payloads of at most ``mtu - 3`` bytes."""
    size = max(1, mtu - 3)
    return [stream[i:i + size] for i in range(0, len(stream), size)]
