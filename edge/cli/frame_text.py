"""One-line and JSON renderings of firmware_bridge frames.

They serve ``edge frames decode`` and ``edge serial monitor`` (imported inside
those commands: firmware_bridge loads numpy). SAMPLES frames are shown by their
header and shape, not their values.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import firmware_bridge as fb

_NAMES = {fb.Samples: "SAMPLES", fb.Hello: "HELLO", fb.Welcome: "WELCOME", fb.Vitals: "VITALS",
          fb.Status: "STATUS", fb.Log: "LOG", fb.TimeSyncRequest: "TIME_SYNC_REQ",
          fb.TimeSyncResponse: "TIME_SYNC_RESP", fb.Ack: "ACK", fb.Nack: "NACK"}


def _name(enum_cls: type[enum.Enum], value: int) -> str:
    try:
        return str(enum_cls(value).name)
    except ValueError:
        return str(value)


def message_dict(msg: fb.Message) -> dict[str, Any]:
    """A JSON-ready view of a decoded frame (SAMPLES: header and shape only)."""
    out: dict[str, Any] = {"type": _NAMES.get(type(msg), type(msg).__name__), "seq": msg.seq,
                           "timestamp_us": msg.timestamp_us, "flags": msg.flags,
                           "version": msg.version}
    if isinstance(msg, fb.Samples):
        out.update(stream_id=msg.stream_id, first_sample_index=msg.first_sample_index,
                   n_samples=msg.n_samples, n_channels=msg.n_channels,
                   format=_name(fb.SampleFormat, msg.sample_format))
        return out
    fields = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)
              if f.name not in out}
    if isinstance(msg, fb.Hello):
        fields["device_id"] = f"{msg.device_id:016x}"
        fields["fw_version"] = ".".join(map(str, msg.fw_version))
        fields["streams"] = [dataclasses.asdict(s) for s in msg.streams]
    elif isinstance(msg, fb.Vitals):
        fields["items"] = [{"kind": _name(fb.VitalKind, v.kind), "value": v.value,
                            "unit": _name(fb.Unit, v.unit), "flags": v.flags}
                           for v in msg.items]
    elif isinstance(msg, fb.Status):
        fields["contact"] = _name(fb.ContactState, msg.contact)
    elif isinstance(msg, fb.Log):
        fields["level"] = _name(fb.LogLevel, msg.level)
    elif isinstance(msg, fb.Ack | fb.Nack):
        fields["acked_type"] = _name(fb.MsgType, msg.acked_type)
        fields["reason"] = _name(fb.NackReason, msg.reason)
    out.update(fields)
    return out


def describe(msg: fb.Message) -> str:
    """One readable line for a decoded frame."""
    d = message_dict(msg)
    head = f"{d['type']:<14} seq={d['seq']:<6} t={d['timestamp_us'] / 1e6:10.3f}s"
    if isinstance(msg, fb.Samples):
        return (f"{head} stream={msg.stream_id} first={msg.first_sample_index} "
                f"n={msg.n_samples}x{msg.n_channels} {d['format']}")
    if isinstance(msg, fb.Hello):
        streams = "; ".join(
            f"#{s.stream_id} {s.sample_rate_hz:g} Hz {_name(fb.SampleFormat, s.sample_format)} "
            + ",".join(f"{c.name}[{c.unit}]" for c in s.channels) for s in msg.streams)
        return (f"{head} device={d['device_id']} fw={d['fw_version']} "
                f"proto={msg.proto_min}..{msg.proto_max} streams: {streams}")
    rest = {k: v for k, v in d.items() if k not in ("type", "seq", "timestamp_us", "version")
            and not (k == "flags" and not v)}
    return f"{head} " + " ".join(f"{k}={v}" for k, v in rest.items())


def decode_capture(path: str) -> tuple[list[fb.Message], fb.DecoderStats]:
    decoder = fb.FrameDecoder()
    out: list[fb.Message] = []
    with open(path, "rb") as fh:
        while chunk := fh.read(65536):
            out.extend(decoder.feed(chunk))
    return out, decoder.stats
