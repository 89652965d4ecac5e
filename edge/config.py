"""Configuration: every threshold in one place, each with its rationale and source.

Clinical thresholds are never literals in detection code: rules receive one of
the dataclasses below. Every field carries ``metadata`` with a ``rationale``
(why this value) and a ``source`` (the guideline or paper it comes from), so
``edge config example`` can print a commented file and reviewers can trace a
number to its origin (IEC 62304 traceability).

A TOML file overrides any field: sections are named after the dataclass
attributes of :class:`EdgeConfig` (``[rate_rules]``, ``[pipeline]``, ...).
Unknown keys are errors that name the file, the key and what is expected.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.dsp.qrs import QrsConfig
from edge.errors import ConfigError


def setting(default: Any, rationale: str, source: str = "engineering choice") -> Any:
    """A config field with its rationale and source attached."""
    return field(default=default, metadata={"rationale": rationale, "source": source})


@dataclass(frozen=True)
class PipelineConfig:
    queue_blocks: int = setting(
        256,
        "Bounded queue between sources and processors, in blocks. A full queue makes the "
        "source wait (backpressure); a live source that cannot wait counts the overflow "
        "and emits a gap marker instead of dropping silently.",
    )
    window_s: float = setting(
        1.0,
        "Length of the sample windows handed to waveform processors. Short enough for "
        "sub-second alarm latency, long enough to amortise per-call overhead.",
    )
    hop_s: float = setting(
        1.0, "Hop between windows. Equal to window_s: streaming detectors keep their own state."
    )
    replay_block_s: float = setting(
        0.25, "Block size when replaying a recording: what a wearable typically sends per packet."
    )


@dataclass(frozen=True)
class HeartRateConfig:
    average_beats: int = setting(
        8,
        "Heart rate is the median of the last N RR intervals: robust to one missed or "
        "extra beat, and close to how bedside monitors average (4 to 16 beats).",
        "IEC 60601-2-27:2011 201.12.1.101.2 (heart rate averaging, disclosed by manufacturer)",
    )
    min_rr_s: float = setting(
        0.2,
        "RR shorter than 200 ms (300 bpm) is physiologically implausible: treated as a "
        "detection artefact and not used for rate.",
        "IEC 60601-2-27:2011 201.12.1.101.1 (HR range up to 300 bpm for adults)",
    )
    report_every_s: float = setting(
        5.0, "How often a heart-rate measurement is emitted (downsampled vitals for sync)."
    )


@dataclass(frozen=True)
class RateRulesConfig:
    """Brady / tachy / pause rules. Defaults are adult defaults; patients get overrides."""

    tachy_bpm: float = setting(
        120.0,
        "Adult tachycardia alarm limit. 100 bpm defines tachycardia, but monitor alarm "
        "defaults sit at 120 to limit alarm fatigue; clinicians lower it per patient.",
        "AHA/ACC/HRS 2015 SVT guideline (HR > 100 bpm); IEC 60601-2-27 default alarm limits",
    )
    tachy_clear_bpm: float = setting(
        110.0, "Hysteresis: the episode ends only when HR falls below this.", "engineering choice"
    )
    brady_bpm: float = setting(
        40.0,
        "Adult bradycardia alarm limit ('extreme bradycardia' < 40 bpm). Sinus bradycardia "
        "is < 50 bpm (< 60 in older definitions) and is often benign in sleep or athletes.",
        "Clifford et al. 2015, PhysioNet/CinC Challenge 2015 alarm definitions; "
        "2018 ACC/AHA/HRS bradycardia guideline (sinus bradycardia < 50 bpm)",
    )
    brady_clear_bpm: float = setting(
        45.0, "Hysteresis: the episode ends only when HR rises above this.", "engineering choice"
    )
    min_duration_s: float = setting(
        10.0,
        "A rate condition must hold this long before it becomes an episode: filters "
        "transient rate changes and single misdetected beats.",
        "IEC 60601-2-27:2011 201.6.6.2.101 (alarm delay disclosed; typically <= 10 s)",
    )
    pause_s: float = setting(
        3.0,
        "An RR interval of 3 s or more is a pause; clinically significant and reported "
        "in Holter practice.",
        "2018 ACC/AHA/HRS bradycardia guideline (pauses > 3 s)",
    )
    asystole_s: float = setting(
        4.0,
        "No QRS for 4 s or more is asystole (urgent).",
        "Clifford et al. 2015, PhysioNet/CinC Challenge 2015 (asystole: no QRS for >= 4 s)",
    )
    realert_s: float = setting(
        300.0,
        "After a brady/tachy episode ends, a new one of the same kind within this time "
        "is merged into it instead of raising a new alarm (alarm-fatigue control).",
        "engineering choice; IEC 60601-1-8 alarm systems (avoid repeated nuisance alarms)",
    )


@dataclass(frozen=True)
class StoreConfig:
    path: str = setting(
        "edge-outbox.sqlite3",
        "Where the outbox lives. Relative paths are relative to the working directory; "
        "under systemd it is the StateDirectory.",
    )
    max_bytes: int = setting(
        64 * 1024 * 1024,
        "Size limit of the outbox database (pages in use). Above it the outbox prunes, in "
        "this order: waveform evidence snippets, events already delivered, undelivered "
        "info-priority events; undelivered urgent/warning alarms are never pruned. 64 MiB "
        "holds months of episodes and leaves an SD card room for the OS and logs. 0 = no limit.",
    )
    prune_to_fraction: float = setting(
        0.8,
        "When pruning, remove until the outbox is below this fraction of max_bytes, so that "
        "pruning (and its log line) happens in rare batches rather than on every write.",
    )
    keep_delivered_s: float = setting(
        7 * 86400.0,
        "Delivered events are kept this long for `edge events` and local review, then "
        "deleted; the backend holds them. 0 = keep until the size limit needs the room.",
    )


@dataclass(frozen=True)
class SyncConfig:
    url: str = setting(
        "",
        "Base URL of the clinical FHIR R4 server (transaction Bundles are POSTed to it). "
        "Empty = sync disabled. Production points at the hospital's FHIR server; "
        "edge.sync.testserver is a test fixture and reference receiver only.",
    )
    batch_events: int = setting(
        50,
        "Events per transaction Bundle: big enough to amortise a round trip after an "
        "outage, small enough that a rejected or timed-out bundle costs little to resend.",
    )
    gzip: bool = setting(
        True,
        "Send bundles with Content-Encoding: gzip. FHIR JSON compresses about 10x, which "
        "matters on a metered or weak link; set false for servers that do not accept it.",
    )
    connect_timeout_s: float = setting(10.0, "TCP/TLS connect timeout.")
    request_timeout_s: float = setting(
        60.0, "Read timeout for one bundle (a server may validate a large bundle slowly)."
    )
    backoff_initial_s: float = setting(
        1.0, "First retry delay after a failed upload; doubles after each further failure.",
        "AWS Architecture Blog, 'Exponential Backoff And Jitter' (2015)",
    )
    backoff_max_s: float = setting(
        300.0,
        "Upper bound of the retry delay: an outage is noticed within 5 minutes of its end.",
    )
    backoff_jitter: float = setting(
        1.0,
        "Fraction of the delay that is randomised (1.0 = 'full jitter': uniform in "
        "[0, delay]). Spreads the retries of many gateways after a backend outage.",
        "AWS Architecture Blog, 'Exponential Backoff And Jitter' (2015)",
    )
    max_retry_after_s: float = setting(
        3600.0,
        "A server's Retry-After (429/503) is honoured up to this many seconds.",
        "RFC 9110 10.2.3 (Retry-After); RFC 6585 4 (429 Too Many Requests)",
    )
    breaker_failures: int = setting(
        5,
        "Consecutive failed uploads that open the circuit breaker: then only one probe "
        "upload (one urgent-first event) is tried per breaker_reset_s until one succeeds.",
        "Nygard, Release It! (2nd ed., 2018), Circuit Breaker pattern",
    )
    breaker_reset_s: float = setting(
        60.0, "How long an open circuit breaker waits before the next probe upload."
    )
    poll_interval_s: float = setting(
        2.0,
        "How often the sync loop looks for new events when idle (the pipeline also wakes "
        "it at once when an episode is stored).",
    )


@dataclass(frozen=True)
class AuthConfig:
    mode: str = setting(
        "none",
        "'none', 'bearer' (a static token read from token_file) or 'smart' (SMART Backend "
        "Services: OAuth2 client credentials with a private_key_jwt client assertion).",
        "HL7 SMART App Launch STU2, Backend Services",
    )
    token_file: str = setting(
        "", "File holding the static bearer token (mode 'bearer'). Read at start, never logged."
    )
    client_id: str = setting("", "OAuth2 client id registered with the hospital (mode 'smart').")
    private_key_file: str = setting(
        "",
        "PEM private key (RSA or EC P-384) that signs the client assertion (mode 'smart'). "
        "Keep it 0600, ideally in a TPM; never logged.",
    )
    key_id: str = setting("", "'kid' of the registered public key (JWKS), sent in the JWT header.")
    algorithm: str = setting(
        "RS384", "JWT signing algorithm: RS384 or ES384 (the two SMART requires servers to support).",
        "HL7 SMART App Launch STU2, client-confidential-asymmetric",
    )
    token_url: str = setting(
        "",
        "Token endpoint. Empty = discovered from [sync] url + /.well-known/smart-configuration.",
    )
    scope: str = setting(
        "system/Observation.cu system/Device.cu system/RiskAssessment.cu",
        "Scopes requested (SMART v2 syntax); create and update, nothing to read.",
    )
    refresh_before_s: float = setting(
        60.0,
        "A token is renewed this long before it expires, so no upload goes out with a token "
        "that expires in flight; a 401 also triggers one renewal and one retry.",
    )


@dataclass(frozen=True)
class TlsConfig:
    verify: bool = setting(
        True, "Verify the server's certificate. Only a test against a throwaway server may "
        "turn this off."
    )
    ca_bundle: str = setting(
        "", "PEM file of CA certificates to trust instead of the system store (a hospital CA)."
    )
    client_cert: str = setting(
        "", "PEM client certificate for mutual TLS (empty = no client certificate)."
    )
    client_key: str = setting("", "PEM private key of the client certificate (0600).")


@dataclass(frozen=True)
class FhirConfig:
    patient_identifier_system: str = setting(
        "urn:example:pseudonym",
        "System of the pseudonymous patient identifier: resources refer to the patient as "
        "Patient?identifier=system|value (a conditional reference the server resolves), so "
        "no name or MRN ever lives on the gateway.",
        "FHIR R4 3.1.0.1.2 conditional references in transactions",
    )
    patient_identifier_value: str = setting(
        "unassigned", "The pseudonym of the patient this gateway is assigned to."
    )
    patient_reference: str = setting(
        "",
        "A literal reference (e.g. 'Patient/123') to use instead of the conditional one, for "
        "servers that do not resolve conditional references.",
    )
    gateway_id: str = setting(
        "00-00-00-00-00-00-00-00",
        "EUI-64 of the gateway (PhgDevice system id), 8 hex bytes separated by dashes.",
        "HL7 PHD IG, PhgDevice profile",
    )
    device_id_system: str = setting(
        "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680",
        "Identifier system of device system ids (IEEE EUI-64).",
        "HL7 PHD IG, PhdDevice/PhgDevice profiles",
    )
    device_id_type_system: str = setting(
        "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers",
        "Code system of the device identifier type (SYSID). PHD IG 2.0 moves it to "
        "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers.",
        "HL7 PHD IG STU1 / 2.0.0 ballot",
    )
    event_identifier_system: str = setting(
        "urn:vitals-edge:event",
        "System of the identifier each event's Observation carries (value = the event id). "
        "Conditional create/update match on it, so a retried upload never duplicates.",
        "FHIR R4 http.html#transaction (conditional create/update)",
    )
    code_system: str = setting(
        "urn:vitals-edge:episode-kind",
        "Code system of the episode kinds (tachycardia, pause, ...) and of the alarm "
        "priority extension. Replace with the hospital's own when it has one.",
    )
    send_evidence: bool = setting(
        False,
        "Send an episode's ECG evidence snippet as an Observation with SampledData "
        "(PhdRtsaObservation style). Off by default: summaries only leave the device.",
        "HL7 PHD IG, PhdRtsaObservation",
    )
    max_evidence_samples: int = setting(
        2500,
        "Upper bound of samples in one evidence snippet (10 s at 250 Hz, about 20 kB of "
        "JSON): longer snippets are decimated, never sent as a multi-megabyte Observation.",
    )


@dataclass(frozen=True)
class SourceConfig:
    """One sensor source the daemon reads (a ``[[sources]]`` table)."""

    type: str = setting("replay", "Transport: 'serial', 'ble' or 'replay' (a recorded trace).")
    device: str = setting("", "Name of the device in stream keys and events (pseudonymous); "
                              "empty: taken from the device itself.")
    path: str = setting("", "replay: the trace, WFDB record or CSV file to stream.")
    speed: float = setting(1.0, "replay: pace relative to real time.")
    loop: bool = setting(False, "replay: start again at the end (soak tests, demos).")
    fs: float = setting(0.0, "replay of a CSV file: its sample rate in Hz.")
    port: str = setting("", "serial: device path, or 'usb:VID:PID[:SERIAL]' to find it by "
                            "USB identity across re-plugs (pyserial list_ports).")
    baud: int = setting(921600, "serial: line rate; the wearable firmware must match it.")
    address: str = setting("", "ble: device address (or empty to use the scan filters).")


@dataclass(frozen=True)
class EdgeConfig:
    sources: tuple[SourceConfig, ...] = field(
        default=(), metadata={"rationale": "The sensor sources the daemon reads: one "
                              "[[sources]] table each."})
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    qrs: QrsConfig = field(default_factory=QrsConfig)
    heart_rate: HeartRateConfig = field(default_factory=HeartRateConfig)
    rate_rules: RateRulesConfig = field(default_factory=RateRulesConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    fhir: FhirConfig = field(default_factory=FhirConfig)


def _type_ok(value: Any, annotation: Any) -> bool:
    if annotation in ("float", float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation in ("int", int):
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in ("str", str):
        return isinstance(value, str)
    if annotation in ("bool", bool):
        return isinstance(value, bool)
    return True


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (expected one of {sorted(known)})")
        hint = hints[key]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis \
                and dataclasses.is_dataclass(args[0]):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{where}.{key}: expected a list of tables ([[{key}]])")
            kwargs[key] = tuple(_build(typing.cast(type, args[0]), v, f"{where}.{key}[{i}]")
                                for i, v in enumerate(value))
            continue
        if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
            if not isinstance(value, dict) or not all(isinstance(v, dict)
                                                      for v in value.values()):
                raise ConfigError(f"{where}.{key}: expected tables [{key}.NAME]")
            kwargs[key] = {name: _build(typing.cast(type, args[1]), v, f"{where}.{key}.{name}")
                           for name, v in value.items()}
            continue
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: expected a table")
            kwargs[key] = _build(typing.cast(type, hint), value, f"{where}.{key}")
            continue
        if not isinstance(hint, types.UnionType) and not _type_ok(value, hint):
            name = getattr(hint, "__name__", str(hint))
            raise ConfigError(f"{where}.{key}: expected {name}, got {value!r}")
        kwargs[key] = float(value) if hint is float else value
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> EdgeConfig:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    if path is None:
        return EdgeConfig()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from exc
    return typing.cast(EdgeConfig, _build(EdgeConfig, raw, str(p)))


def example_toml(config: EdgeConfig | None = None) -> str:
    """A full, commented TOML file of every setting with its rationale and source."""
    config = config or EdgeConfig()
    lines = ["# vitals-edge configuration: every setting, its default, why, and where from."]
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):
            lines += ["", f"[{section.name}]"]
            lines += _table_lines(value, comment_out=False)
            continue
        # collections of tables: show one commented-out example entry
        hint = typing.get_type_hints(EdgeConfig)[section.name]
        item_cls = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)][0]
        lines += ["", f"# {section.metadata.get('rationale', section.name)}"]
        header = f"[[{section.name}]]" if isinstance(value, tuple) else f"[{section.name}.NAME]"
        lines += [f"# {header}"] + _table_lines(item_cls(), comment_out=True)
    return "\n".join(lines) + "\n"


def _render(value: Any) -> str | None:
    if value is None:
        return None  # TOML has no null: the key is left out
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        items = [_render(v) for v in value]
        return "[" + ", ".join(i for i in items if i is not None) + "]"
    return repr(value)


def _table_lines(obj: Any, comment_out: bool) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        meta = f.metadata
        if meta.get("rationale"):
            lines.append(f"# {meta['rationale']}")
        if meta.get("source") and meta["source"] != "engineering choice":
            lines.append(f"# source: {meta['source']}")
        rendered = _render(getattr(obj, f.name))
        if rendered is None:
            lines.append(f"# {f.name} = (not set)")
        else:
            lines.append(("# " if comment_out else "") + f"{f.name} = {rendered}")
    return lines
