"""Line format of the shared test vectors (``vectors/vectors.txt``), read by Python and C.

One line per vector, space-separated ``key=value`` tokens, chosen so that the
C harness (``c/fb_vectors.c``) parses it with ``strtok``/``strtoull`` only:

    V <name> <TYPE> ver= seq= ts= flags= <type fields...> hex=<wire bytes>
    R <name> expect=<DecoderStats counter> hex=<wire bytes>

Integers are decimal, floats are the 8 hex digits of their float32 bit
pattern (exact, no decimal rounding), text is hex of its UTF-8 bytes. Type
fields (repeated tokens keep their order):

    HELLO          dev= fw=MAJ.MIN.PATCH pmin= pmax=
                   {stream=ID:FMT:NCH:RATE {chan=SCALE:OFFSET:NAME:UNIT}}
    WELCOME        chosen= result= gwtime=
    SAMPLES        stream= fmt= first= nch= n= data=V,V,...   (row-major: sample, then channel)
    VITALS         {vital=KIND:UNIT:FLAGS:VALUE}
    STATUS         batt= contact= mv= errors=
    TIME_SYNC_REQ  t1=
    TIME_SYNC_RESP t1= t2= t3=
    ACK, NACK      aseq= atype= reason=
    LOG            level= text=
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .constants import MsgType, SampleFormat
from .messages import (
    Ack,
    Channel,
    Hello,
    Log,
    Message,
    Nack,
    Samples,
    Status,
    Stream,
    TimeSyncRequest,
    TimeSyncResponse,
    Vital,
    Vitals,
    Welcome,
)

__all__ = ["Vector", "format_message", "parse_line", "parse_message"]


def _f(value: float) -> str:
    return struct.pack(">f", value).hex()


def _unf(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def format_message(msg: Message) -> str:
    """``<TYPE> ver= seq= ts= flags= <fields>`` for one message (no name, no hex)."""
    tokens = [
        msg.TYPE.name, f"ver={msg.version}", f"seq={msg.seq}", f"ts={msg.timestamp_us}",
        f"flags={msg.flags}",
    ]
    if isinstance(msg, Hello):
        major, minor, patch = msg.fw_version
        tokens += [f"dev={msg.device_id}", f"fw={major}.{minor}.{patch}",
                   f"pmin={msg.proto_min}", f"pmax={msg.proto_max}"]
        for s in msg.streams:
            tokens.append(f"stream={s.stream_id}:{s.sample_format}:{len(s.channels)}:"
                          f"{_f(s.sample_rate_hz)}")
            tokens += [
                f"chan={_f(c.scale)}:{_f(c.offset)}:{c.name.encode().hex()}:"
                f"{c.unit.encode('ascii').hex()}"
                for c in s.channels
            ]
    elif isinstance(msg, Welcome):
        tokens += [f"chosen={msg.chosen_version}", f"result={msg.result}",
                   f"gwtime={msg.gateway_time_us}"]
    elif isinstance(msg, Samples):
        data = ",".join(str(int(v)) for v in np.asarray(msg.data).reshape(-1))
        tokens += [f"stream={msg.stream_id}", f"fmt={msg.sample_format}",
                   f"first={msg.first_sample_index}", f"nch={msg.n_channels}",
                   f"n={msg.n_samples}", f"data={data}"]
    elif isinstance(msg, Vitals):
        tokens += [f"vital={v.kind}:{v.unit}:{v.flags}:{_f(v.value)}" for v in msg.items]
    elif isinstance(msg, Status):
        tokens += [f"batt={msg.battery_percent}", f"contact={msg.contact}",
                   f"mv={msg.battery_mv}", f"errors={msg.error_flags}"]
    elif isinstance(msg, TimeSyncRequest):
        tokens.append(f"t1={msg.t1}")
    elif isinstance(msg, TimeSyncResponse):
        tokens += [f"t1={msg.t1}", f"t2={msg.t2}", f"t3={msg.t3}"]
    elif isinstance(msg, Ack | Nack):
        tokens += [f"aseq={msg.acked_seq}", f"atype={msg.acked_type}", f"reason={msg.reason}"]
    elif isinstance(msg, Log):
        tokens += [f"level={msg.level}", f"text={msg.text.encode().hex()}"]
    else:  # pragma: no cover - every type is listed above
        raise TypeError(f"no vector format for {type(msg).__name__}")
    return " ".join(tokens)


def parse_message(tokens: list[str]) -> Message:
    """Inverse of :func:`format_message` (tokens split on whitespace, type first)."""
    mtype = MsgType[tokens[0]]
    pairs = [t.split("=", 1) for t in tokens[1:]]
    kv = {k: v for k, v in pairs}
    hdr = {"version": int(kv["ver"]), "seq": int(kv["seq"]), "timestamp_us": int(kv["ts"]),
           "flags": int(kv["flags"])}
    if mtype is MsgType.HELLO:
        streams: list[Stream] = []
        chans: list[Channel] = []
        pending: tuple[int, int, int, float] | None = None

        def close() -> None:
            if pending is not None:
                sid, fmt, _nch, rate = pending
                streams.append(Stream(sid, fmt, rate, tuple(chans)))

        for key, value in pairs:
            if key == "stream":
                close()
                sid, fmt, nch, rate = value.split(":")
                pending = (int(sid), int(fmt), int(nch), _unf(rate))
                chans = []
            elif key == "chan":
                scale, offset, name, unit = value.split(":")
                chans.append(Channel(bytes.fromhex(name).decode(), bytes.fromhex(unit).decode(),
                                     _unf(scale), _unf(offset)))
        close()
        major, minor, patch = (int(x) for x in kv["fw"].split("."))
        return Hello(device_id=int(kv["dev"]), fw_version=(major, minor, patch),
                     proto_min=int(kv["pmin"]), proto_max=int(kv["pmax"]),
                     streams=tuple(streams), **hdr)
    if mtype is MsgType.WELCOME:
        return Welcome(chosen_version=int(kv["chosen"]), result=int(kv["result"]),
                       gateway_time_us=int(kv["gwtime"]), **hdr)
    if mtype is MsgType.SAMPLES:
        sample_format = int(kv["fmt"])
        dtype = np.int16 if sample_format == SampleFormat.INT16 else np.int32
        data = np.array([int(v) for v in kv["data"].split(",")], dtype=dtype)
        return Samples(stream_id=int(kv["stream"]), first_sample_index=int(kv["first"]),
                       sample_format=sample_format, data=data.reshape(int(kv["n"]), int(kv["nch"])),
                       **hdr)
    if mtype is MsgType.VITALS:
        items = []
        for key, value in pairs:
            if key == "vital":
                kind, unit, flags, val = value.split(":")
                items.append(Vital(int(kind), _unf(val), int(unit), int(flags)))
        return Vitals(items=tuple(items), **hdr)
    if mtype is MsgType.STATUS:
        return Status(battery_percent=int(kv["batt"]), contact=int(kv["contact"]),
                      battery_mv=int(kv["mv"]), error_flags=int(kv["errors"]), **hdr)
    if mtype is MsgType.TIME_SYNC_REQ:
        return TimeSyncRequest(t1=int(kv["t1"]), **hdr)
    if mtype is MsgType.TIME_SYNC_RESP:
        return TimeSyncResponse(t1=int(kv["t1"]), t2=int(kv["t2"]), t3=int(kv["t3"]), **hdr)
    if mtype in (MsgType.ACK, MsgType.NACK):
        cls = Ack if mtype is MsgType.ACK else Nack
        return cls(acked_seq=int(kv["aseq"]), acked_type=int(kv["atype"]),
                   reason=int(kv["reason"]), **hdr)
    return Log(level=int(kv["level"]), text=bytes.fromhex(kv["text"]).decode(), **hdr)


@dataclass(frozen=True)
class Vector:
    """One line of the vectors file: ``kind`` is "V" (valid frame) or "R" (to be rejected)."""

    kind: str
    name: str
    wire: bytes
    message: Message | None = None
    expect: str | None = None


def parse_line(line: str) -> Vector | None:
    """Parse one vectors-file line; None for blank lines and ``#`` comments."""
    tokens = line.split()
    if not tokens or tokens[0].startswith("#"):
        return None
    kind, name, rest = tokens[0], tokens[1], tokens[2:]
    hex_tokens = [t for t in rest if t.startswith("hex=")]
    wire = bytes.fromhex(hex_tokens[0][4:]) if hex_tokens else b""
    body = [t for t in rest if not t.startswith("hex=")]
    if kind == "V":
        return Vector(kind, name, wire, message=parse_message(body))
    if kind == "R":
        return Vector(kind, name, wire, expect=body[0].split("=", 1)[1])
    raise ValueError(f"unknown vector kind {kind!r}")
