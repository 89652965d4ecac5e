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
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ConfigError


def setting(default: Any, rationale: str, source: str = "engineering choice") -> Any:
    """A config field with its rationale and source attached."""
    return field(default=default, metadata={"rationale": rationale, "source": source})


#: the placeholder pseudonym of a gateway not yet assigned to a patient
PATIENT_PLACEHOLDER = "unassigned"
#: how episodes link to the patient (FhirConfig.patient_link)
PATIENT_LINKS = ("create", "existing")


# QRS detector (edge.dsp.qrs): here so that reading a configuration never imports scipy
_PT = "Pan & Tompkins 1985, IEEE TBME 32(3):230-236"
_HT = "Hamilton & Tompkins 1986, IEEE TBME 33(12):1157-1165"
_OSEA = "Hamilton 2002, Computers in Cardiology 29:101-104 (OSEA qrsdet2.c)"


@dataclass(frozen=True)
class QrsConfig:
    """Every tunable value of :class:`QrsDetector`, with its rationale and source.

    Read ``dataclasses.fields(QrsConfig)[i].metadata`` for the ``rationale`` and
    ``source`` of each value.
    """

    bandpass_low_hz: float = field(
        default=5.0,
        metadata={
            "rationale": "QRS energy is concentrated in 5-15 Hz; below 5 Hz are baseline "
            "wander, P and T waves",
            "source": f"{_PT}, sec. II-A",
        },
    )
    bandpass_high_hz: float = field(
        default=15.0,
        metadata={
            "rationale": "above 15 Hz are muscle noise and power-line interference",
            "source": f"{_PT}, sec. II-A",
        },
    )
    bandpass_order: int = field(
        default=2,
        metadata={
            "rationale": "Butterworth order per band edge; low order keeps the QRS shape and "
            "a short group delay, like the integer filters of the paper",
            "source": f"{_PT}, sec. II-A (cascade of 2nd-order low- and high-pass)",
        },
    )
    integration_window_s: float = field(
        default=0.080,
        metadata={
            "rationale": "moving-window integration of the rectified derivative; 80 ms is "
            "about one QRS width, so wide PVCs and normal beats give similar peaks "
            "and T waves do not merge with the QRS",
            "source": f"{_OSEA} (WINDOW_WIDTH = 80 ms); {_HT}",
        },
    )
    peak_blanking_s: float = field(
        default=0.195,
        metadata={
            "rationale": "only one QRS can occur in any 200 ms window: a peak is a candidate "
            "only if it is the largest within +/- this time",
            "source": f"{_OSEA} (PRE_BLANK = MS195); {_PT}, sec. III-B (200 ms refractory)",
        },
    )
    refractory_s: float = field(
        default=0.200,
        metadata={
            "rationale": "physiological refractory period: no second QRS within 200 ms",
            "source": f"{_PT}, sec. III-B",
        },
    )
    threshold_coefficient: float = field(
        default=0.3125,
        metadata={
            "rationale": "DT = NPK + TH * (QPK - NPK); the best value found on the whole "
            "MIT-BIH database with mean peak-level estimators",
            "source": f"{_HT}; {_OSEA} (TH = .3125)",
        },
    )
    history_beats: int = field(
        default=8,
        metadata={
            "rationale": "number of recent QRS peaks, noise peaks and RR intervals averaged "
            "for the levels and the RR estimate",
            "source": f"{_HT}; {_PT}, sec. III-B (RR AVERAGE over 8 beats)",
        },
    )
    searchback_rr_factor: float = field(
        default=1.5,
        metadata={
            "rationale": "a QRS is considered missed when none came within 1.5 x the mean RR",
            "source": f"{_HT}; {_OSEA} (sbcount = rrmean + rrmean/2); {_PT} uses 1.66",
        },
    )
    searchback_max_s: float = field(
        default=1.5,
        metadata={
            "rationale": "cap on the search-back delay so that decisions stay within ~1.5 s "
            "of the R peak even in bradycardia (only matters when the mean RR > 1 s)",
            "source": "latency requirement of this gateway (not in the papers)",
        },
    )
    searchback_threshold_factor: float = field(
        default=0.5,
        metadata={
            "rationale": "search-back accepts peaks above half the detection threshold",
            "source": f"{_PT}, sec. III-B (THRESHOLD I2 = 0.5 THRESHOLD I1); {_OSEA}",
        },
    )
    searchback_min_delay_s: float = field(
        default=0.360,
        metadata={
            "rationale": "peaks within 360 ms of a QRS may be T waves and are not taken by "
            "search-back (a T wave could mask a small following QRS)",
            "source": f"{_OSEA} (MS360)",
        },
    )
    twave_window_s: float = field(
        default=0.360,
        metadata={
            "rationale": "a peak within 360 ms of the previous QRS is tested as a possible T wave",
            "source": f"{_PT}, sec. III-C",
        },
    )
    twave_slope_ratio: float = field(
        default=0.5,
        metadata={
            "rationale": "such a peak is a T wave if its maximal slope is below half the "
            "maximal slope of the previous QRS",
            "source": f"{_PT}, sec. III-C",
        },
    )
    irregular_rr_low: float = field(
        default=0.92,
        metadata={
            "rationale": "an RR interval below 92 % of the RR average marks the rhythm irregular",
            "source": f"{_PT}, sec. III-B (RR LOW LIMIT)",
        },
    )
    irregular_rr_high: float = field(
        default=1.16,
        metadata={
            "rationale": "an RR interval above 116 % of the RR average marks the rhythm irregular",
            "source": f"{_PT}, sec. III-B (RR HIGH LIMIT)",
        },
    )
    irregular_threshold_factor: float = field(
        default=0.5,
        metadata={
            "rationale": "when any of the last 8 RR intervals is outside the limits the rhythm is "
            "irregular and the detection threshold is halved to avoid missing beats "
            "(ectopy, couplets, atrial fibrillation)",
            "source": f"{_PT}, sec. III-B ('for irregular heart rates, the first threshold "
            "of each set is reduced by half')",
        },
    )
    fiducial_search_s: float = field(
        default=0.080,
        metadata={
            "rationale": "the R peak is the sample of largest deviation from the local baseline "
            "within +/- this time of the band-pass estimate (half a wide QRS)",
            "source": "MIT-BIH annotation convention: beat label at the major local extremum "
            "of the QRS (Moody & Mark 2001, IEEE EMB Mag. 20(3):45-50)",
        },
    )
    fiducial_baseline_s: float = field(
        default=0.150,
        metadata={
            "rationale": "local baseline = median of the raw signal within +/- this time "
            "(covers PR and ST segments as well as the QRS)",
            "source": "isoelectric level estimate around the QRS (design choice)",
        },
    )
    learning_s: float = field(
        default=1.2,
        metadata={
            "rationale": "after start or reset the first QRS level is the largest peak of this "
            "window (contains a beat at any rate >= 50 bpm); short to bound latency",
            "source": f"{_PT}, sec. III-A (learning phase, 2 s there)",
        },
    )
    initial_rr_s: float = field(
        default=1.0,
        metadata={
            "rationale": "RR buffer initial value before 8 intervals are known",
            "source": f"{_OSEA} (rrbuf initialised to MS1000)",
        },
    )
    relearn_after_s: float = field(
        default=8.0,
        metadata={
            "rationale": "if no QRS is found for 8 s the QRS level is re-initialised from the "
            "per-second maxima of the last 8 s (recovers after artefacts or a large "
            "amplitude drop)",
            "source": f"{_OSEA} (threshold reset after 8 s without detection)",
        },
    )
    min_qrs_amplitude_mv: float = field(
        default=0.05,
        metadata={
            "rationale": "absolute floor: peaks smaller than the response to a 0.05 mV QRS are "
            "never beats, so flat lines and ADC quantisation noise (MIT-BIH LSB = 5 uV) give "
            "no false beats; OSEA uses 150 uV, lowered here because low-voltage leads "
            "(0.2 mV peak-to-peak QRS, e.g. CPSC 2021 lead I) must still be detected",
            "source": f"{_OSEA} (MIN_PEAK_AMP, 150 uV), lowered for low-voltage leads",
        },
    )
    floor_template_sigma_s: float = field(
        default=0.015,
        metadata={
            "rationale": "width (Gaussian sigma) of the reference QRS used to convert "
            "min_qrs_amplitude_mv into a feature level: about 90 ms QRS duration",
            "source": "normal QRS duration 80-100 ms (AHA/ACCF/HRS 2009 ECG standardization)",
        },
    )

    def validate(self) -> None:
        """Raise :class:`ConfigError` if a value is out of range."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            bad = isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            if bad or v < 0 or (v == 0 and f.name != "min_qrs_amplitude_mv"):
                raise ConfigError(f"QrsConfig.{f.name} must be a positive number")
        if self.bandpass_low_hz >= self.bandpass_high_hz:
            raise ConfigError("QrsConfig.bandpass_low_hz must be below bandpass_high_hz")
        if not 0 < self.threshold_coefficient < 1:
            raise ConfigError("QrsConfig.threshold_coefficient must be in (0, 1)")
        if not 0 < self.irregular_threshold_factor <= 1:
            raise ConfigError("QrsConfig.irregular_threshold_factor must be in (0, 1]")
        if not self.irregular_rr_low < 1 < self.irregular_rr_high:
            raise ConfigError("QrsConfig.irregular_rr_low < 1 < irregular_rr_high is required")
        if not 0 < self.searchback_threshold_factor <= 1:
            raise ConfigError("QrsConfig.searchback_threshold_factor must be in (0, 1]")
        if int(self.history_beats) != self.history_beats:
            raise ConfigError("QrsConfig.history_beats must be an integer")


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
    inadequate_baseline_mv: float = setting(
        2.0,
        "A silent interval (no QRS) whose baseline (0.5 s moving average) moves more than "
        "this is not asystole but an inadequate signal: amplifier saturation and recovery, "
        "electrode motion or lead-off. The would-be pause/asystole is suppressed and recorded "
        "as an info 'ecg_signal_inadequate' event instead of an alarm. A true asystole "
        "trace is near-flat (baseline moves well under 1 mV).",
        "Behar et al. 2013, IEEE TBME 60(6):1660-1666 (signal quality for false alarm "
        "reduction); Clifford et al. 2015 PhysioNet/CinC Challenge (most false asystole "
        "alarms come from noise and signal loss); IEC 60601-1-8 (technical vs physiological "
        "alarms)")
    inadequate_clipped_fraction: float = setting(
        0.05,
        "The same: more than this fraction of the silent interval's samples sit at its "
        "extreme values (ADC saturation), with a range above 1.5 mV.",
        "IEC 60601-2-27:2011 201.12.4.102 (lead-off / signal inadequate must not be shown as "
        "asystole)")
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
class TraceConfig:
    """How `edge record` writes trace files, so that damage stays cheap (docs/trace-format.md)."""

    fsync_s: float = setting(
        1.0,
        "While records flow, the recorder forces what it wrote to the card (os.fsync) at most "
        "this long after the previous fsync, so a power cut loses at most about this much "
        "wall time of recording (a crash of the process alone loses nothing: every record is "
        "flushed to the OS). One fsync a second rewrites at most one partly filled flash "
        "page a second: little wear next to the OS's own writes. 0 = only when the "
        "recording ends (and whenever the kernel writes back).",
        "engineering choice; Linux writes dirty pages back within about 30 s by itself "
        "(vm.dirty_expire_centisecs)",
    )
    max_record_s: float = setting(
        1.0,
        "A block longer than this is written as several records. A damaged record costs "
        "its whole length (its CRC cannot say which bytes are bad), so one bad 512-byte "
        "sector or 4 KiB flash page costs a few seconds of signal, not minutes. Blocks from "
        "wearables and replays are shorter (0.05-0.25 s) and are written as they came.",
    )
    declare_every_records: int = setting(
        240,
        "Stream declarations (device, stream, sample rate, channels) are written again after "
        "this many records (one minute of 0.25 s blocks), so a damaged declaration costs "
        "at most the records up to the next one instead of the rest of the trace.",
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
        False,
        "Send bundles with Content-Encoding: gzip. FHIR JSON compresses about 10x, which "
        "matters on a metered or weak link, but a FHIR server need not accept compressed "
        "requests (Medplum's router and many proxies do not): off by default. When on and "
        "the server answers 415, the gateway falls back to plain JSON for the rest of the "
        "connection, logs it once, and resends the same bundle (nothing is lost).",
        "RFC 9110 8.4 (Content-Encoding), 15.5.16 (415 Unsupported Media Type)",
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
        "RS384",
        "JWT signing algorithm: RS384 or ES384 (the two SMART requires servers to support).",
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
        "System of the pseudonymous patient identifier the gateway knows its patient by: "
        "no name or MRN ever lives on the gateway.",
        "FHIR R4 http.html#trules (conditional references in transactions)",
    )
    patient_identifier_value: str = setting(
        PATIENT_PLACEHOLDER,
        "The pseudonym of the patient this gateway is assigned to. The default is a "
        "placeholder: `edge config check` warns while sync is on and it is still set.",
    )
    patient_link: str = setting(
        "create",
        "How episodes link to the patient. 'create': each bundle carries a conditional create "
        "of a Patient holding only the identifier (no demographics), and resources refer to "
        "its entry's fullUrl, so the link resolves on any R4 server. 'existing': resources "
        "refer to Patient?identifier=system|value; the server must already hold exactly one "
        "such Patient (strict servers fail the whole transaction otherwise; lenient ones store "
        "the reference unresolved). Use 'existing' when the hospital's FHIR server owns the "
        "Patient record.",
        "FHIR R4 http.html#trules and #ccreate (conditional references, conditional create)",
    )
    patient_reference: str = setting(
        "",
        "A literal reference (e.g. 'Patient/123') to use instead of patient_link, for "
        "servers that neither resolve conditional references nor allow creating a Patient.",
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

    def __post_init__(self) -> None:
        if self.patient_link not in PATIENT_LINKS:
            raise ConfigError(f"fhir.patient_link: expected one of {', '.join(PATIENT_LINKS)}, "
                              f"got {self.patient_link!r}")


@dataclass(frozen=True)
class EctopyConfig:
    """Ventricular runs and ectopic burden, from beats the beat model labelled."""

    run_min_beats: int = setting(
        3, "Three or more consecutive ventricular beats form a run (non-sustained VT when "
           "faster than run_min_bpm).",
        "2017 AHA/ACC/HRS guideline for ventricular arrhythmias (NSVT: >= 3 consecutive "
        "ventricular beats at > 100 bpm lasting < 30 s)")
    run_min_bpm: float = setting(
        100.0, "A ventricular run slower than this is an idioventricular rhythm, not VT.",
        "2017 AHA/ACC/HRS guideline for ventricular arrhythmias")
    sustained_s: float = setting(
        30.0, "A run lasting this long is sustained VT: urgent.",
        "2017 AHA/ACC/HRS guideline for ventricular arrhythmias (sustained VT >= 30 s)")
    burden_window_s: float = setting(
        300.0, "Ectopic burden (PVC and PAC per minute, PVC % of beats) is measured over "
               "this sliding window.")
    pvc_burden_pct: float = setting(
        10.0, "A PVC burden at or above this (% of beats) sustained over the window is "
              "'frequent PVCs' (info): a burden over 10 % is associated with PVC-induced "
              "cardiomyopathy and merits review.",
        "2017 AHA/ACC/HRS guideline for ventricular arrhythmias (PVC burden > 10-15 %)")
    burden_clear_pct: float = setting(
        7.0, "Hysteresis: 'frequent PVCs' ends when the burden falls below this.")
    evidence_beats_before: int = setting(
        4, "A ventricular run's evidence (stored with the episode and sent in its FHIR "
           "Observation) is the RR intervals and classes of its beats and of this many beats "
           "before it, so a reviewer sees the coupling into the run.")
    evidence_max_beats: int = setting(
        64, "At most this many beats in a run's evidence (the onset of a long run is kept): "
            "bounds the stored episode and its FHIR Observation.")


@dataclass(frozen=True)
class EvidenceConfig:
    """Waveform snippets kept with episodes (locally; synced only if [fhir] send_evidence)."""

    enabled: bool = setting(True, "Keep a short waveform snippet around each episode's onset "
                                  "in the outbox, for a clinician to review.")
    pre_s: float = setting(10.0, "Seconds of signal kept before the onset.")
    post_s: float = setting(5.0, "Seconds of signal kept after the onset.")


@dataclass(frozen=True)
class OpsConfig:
    """Running under systemd: metrics, watchdog, status."""

    metrics_host: str = setting(
        "127.0.0.1", "Metrics are served on localhost only: they reveal when a patient's "
        "devices are active. Expose them through an authenticated proxy if needed.")
    metrics_port: int = setting(9108, "Prometheus scrape port (0: pick a free one, "
                                      "-1: no metrics endpoint).")
    stall_s: float = setting(
        30.0, "If items wait in the pipeline queue and none is processed for this long, the "
        "pipeline is stalled: the systemd watchdog ping is withheld so systemd restarts us.")
    status_every_s: float = setting(10.0, "How often the systemd STATUS line is refreshed.")


def _split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) -> (host, port); ConfigError when malformed."""
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"web.listen: expected 'HOST:PORT' (e.g. '127.0.0.1:8080'), "
                          f"got {listen!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


@dataclass(frozen=True)
class WebConfig:
    """The read-only bedside web view (``edge run`` serves it when ``listen`` is set)."""

    listen: str = setting(
        "", "Where the web view listens, 'HOST:PORT'. Empty (the default): no web view. "
        "Off by default because it shows live patient signals: switch it on where someone "
        "needs to look. Use '127.0.0.1:8080' (loopback) and reach it on the Pi itself or "
        "through an SSH tunnel; any other address is refused unless token_file is set.",
        "engineering choice; IEC 80001-1 (risk management of networked medical IT)")
    token_file: str = setting(
        "", "A file holding the access token (mode 0600, owner only). Required when listen "
        "is not a loopback address; when set, every request (page and API) must carry it "
        "(Authorization: Bearer, or the HttpOnly cookie the login page sets). Off loopback "
        "use TLS too (tls_cert/tls_key, or a TLS proxy in front), or the token travels in "
        "clear.")
    tls_cert: str = setting(
        "", "PEM certificate (chain) to serve HTTPS directly; with tls_key. Empty: plain HTTP "
        "(fine on loopback and through an SSH tunnel; off loopback the token would travel "
        "in clear, so the daemon warns).")
    tls_key: str = setting("", "PEM private key of tls_cert (mode 0600).")
    strip_s: float = setting(
        10.0, "Seconds of waveform the live strip shows (a bedside monitor's sweep is "
        "typically 6-10 s at 25 mm/s).", "IEC 60601-2-27 (25 mm/s sweep)")
    push_hz: float = setting(
        5.0, "Live updates per second sent to each open page (new samples and beats since "
        "the last one). 5 Hz keeps sample-to-screen under 1 s with every block size used "
        "here (0.25 s) and batches work: one message is built per tick for all clients.")
    status_every_s: float = setting(
        1.0, "How often the numerics, link and outbox summary are recomputed and pushed "
        "(shared by all clients; the outbox is read at most this often).")
    stale_s: float = setting(
        3.0, "A source with no sample for this long is shown as silent (stale-data banner); "
        "the page also shows it when it hears nothing from the daemon for this long. Above "
        "the longest normal interval between blocks (0.25-1 s) with margin; the banner "
        "then shows within 5 s of the data stopping.")
    client_queue: int = setting(
        25, "Messages waiting for one client before it is dropped (5 s at 5 Hz). A slow or "
        "stalled browser is disconnected, never waited for: the pipeline is not slowed. "
        "The page reconnects by itself.")
    max_clients: int = setting(
        50, "At most this many live connections; more are refused with 503 (bounds the "
        "daemon's memory and CPU: 20 tabs cost it under 5 % of a core, see README).")

    def __post_init__(self) -> None:
        if not self.listen:
            return
        host, _ = _split_listen(self.listen)
        if not is_loopback(host) and not self.token_file:
            raise ConfigError(
                f"web.listen: {self.listen!r} is not a loopback address: refused without "
                "web.token_file (a 0600 file holding an access token); or listen on "
                "127.0.0.1 and use an SSH tunnel")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("web: tls_cert and tls_key go together (both or neither)")
        if self.push_hz <= 0 or self.strip_s <= 0 or self.client_queue < 1:
            raise ConfigError("web: push_hz and strip_s must be positive, client_queue >= 1")

    @property
    def host_port(self) -> tuple[str, int]:
        return _split_listen(self.listen)


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
    adapter: str = setting("hci0", "ble: the BlueZ adapter this source uses; one gateway "
                                   "process owns each adapter (connection attempts are "
                                   "serialised and counted per adapter).")
    silence_timeout_s: float = setting(
        10.0, "ble: no notification for this long while connected means a silent link: "
        "close and reconnect. Above the slowest expected notification interval (HRS: "
        "about 1 s; PLX continuous: 1 s) with margin for a few missed connection events.")
    service_uuids: tuple[str, ...] = setting(
        (), "ble without an address: only devices advertising one of these service UUIDs "
        "(16-bit '180d' or 128-bit). Passed to BlueZ as the discovery filter, so the "
        "adapter itself drops other advertisers (a ward is full of them).")
    name_pattern: str = setting(
        "", "ble without an address: a regular expression the advertised name must match "
        "(re.search, case-sensitive), e.g. '^VE-SPO2-0042$' for one patient's oximeter. "
        "Names are not unique or authenticated: combine with address_allow for a bedside.")
    address_allow: tuple[str, ...] = setting(
        (), "ble without an address: only these addresses (allow-list). The one filter that "
        "names a device exactly; with an empty list any device passing the other filters "
        "is taken, the first one seen (several sources with filters never share one "
        "device: each takes a device no other source in this process holds).")
    scan_timeout_s: float = setting(
        10.0, "ble without an address: one scan lasts at most this long; with no match it "
        "counts as a 'not found' connect failure and backs off. Several advertising "
        "intervals of a health device (100 ms to 2.5 s) even on a busy channel.")
    agent_capability: str = setting(
        "NoInputNoOutput", "ble pairing agent IO capability: 'NoInputNoOutput' (Just Works, "
        "no MITM protection) or 'KeyboardOnly' (passkey entry: the user types the 6 digits "
        "the cuff or oximeter shows, which protects against MITM).",
        "Bluetooth Core 5.4 Vol 3 Part H 2.3.5.1 (pairing method from IO capabilities); "
        "BlueZ doc/org.bluez.AgentManager.rst")
    passkey_file: str = setting(
        "", "ble passkey entry: a file holding the device's 6-digit passkey (read when BlueZ "
        "asks; keep it mode 0600). `edge ble pair --passkey N` overrides it.")


@dataclass(frozen=True)
class InferenceConfig:
    """Which shipped models run, on which runtime, with how many threads."""

    models_dir: str = setting(
        "",
        "Directory holding models/<name>/manifest.json. Empty: EDGE_MODELS_DIR, else the "
        "models/ folder of the installed checkout.",
    )
    backend: str = setting(
        "onnxruntime",
        "Runtime for the models: 'onnxruntime' or 'litert' (TFLite). Both give the same "
        "decisions within the tolerance stated in each model card; onnxruntime has wheels "
        "everywhere Python does, LiteRT is lighter on memory.",
    )
    precision: str = setting(
        "auto",
        "'auto' (each model's default_precision: int8 only where its int8 files decide as "
        "fp32 does on the golden rows, else fp32), 'int8' or 'fp32'. `edge model verify` "
        "checks every file against the fp32 reference on this machine's CPU.",
        "model cards (models/*/MODEL_CARD.md, section Quantization)",
    )
    threads: int = setting(
        1,
        "Inference threads per model. One: a Pi core is shared with acquisition, "
        "storage and sync, and these models take tens of microseconds per call.",
    )
    af_model: str = setting(
        "af_rr", "AF model directory name under models_dir; empty disables AF detection."
    )
    beat_model: str = setting(
        "beat_nsv",
        "Beat classifier (N/S/V/F) directory name under models_dir; empty disables it.",
    )


@dataclass(frozen=True)
class AfConfig:
    """AF episode rules on top of the AF model's window probabilities."""

    hop_beats: int = setting(
        8,
        "A new 32-RR window is scored every 8 beats: about 6 s at 80 bpm, so onset and "
        "offset are located to a few seconds at a cost of one small inference per hop.",
    )
    exclude_rr_labels: tuple[str, ...] = setting(
        ("V",),
        "RR intervals that begin or end at a beat the beat classifier gives one of these "
        "labels are left out of the AF window: an ectopic beat's short coupling interval and "
        "compensatory pause are not AF intervals, and frequent PVCs (bigeminy, couplets) "
        "make RR irregular without AF, the classic cause of false AF from RR intervals. "
        "Standard HRV practice excludes intervals adjacent to ectopic beats. S is not in "
        "the default: the beat model labels few beats S (MIT-BIH DS1 replay: 21 of 908 "
        "beats inside 201's AF, 24 of 2279 in 118), and a beat with a short RR inside AF "
        "is a conducted AF beat whose interval is the evidence.",
        "Task Force of the ESC and NASPE 1996, Circulation 93:1043-1065 (ectopic beat "
        "editing); Petrenas et al. 2015, Comput Biol Med 65:184-191 (ectopic filtering "
        "before RR-based AF detection)")
    max_excluded_fraction: float = setting(
        0.4,
        "A window for which more than this share of the RR intervals had to be left out "
        "(next to beats labelled exclude_rr_labels) is not judged: amid frequent PVCs the "
        "beat classifier misses some, and the ones it misses make a regular rhythm look "
        "irregular (MIT-BIH 106, bigeminy: its false AF windows had 31-54 % excluded, 10th "
        "to 90th percentile; AF "
        "windows of 203, AF with PVCs: median 22 %, 90th percentile 36 %). Chosen on the "
        "held-out windows of the patient-grouped cross-validation (tools/train_af.py, "
        "docs/detection-changes.md 2026-12-04): 0.4 removed every false AF episode without "
        "losing a reference episode.",
        "cross-validation by patient; Petrenas et al. 2015 (ectopic filtering before "
        "RR-based AF detection)")
    min_sqi: float = setting(
        0.7,
        "The ECG signal quality index ([ecg_quality], combined SQI) a second of signal "
        "needs to count as usable for AF. Stricter than [ecg_quality] usable_threshold "
        "(0.5): a QRS detector on noise yields irregular RR intervals, the very evidence "
        "of AF. On the NSTDB 118e00 / 118e06 excerpts (0 and 6 dB electrode-motion noise) "
        "the noisy stretch scores 0.4-0.8 (median about 0.6) and raised a false AF alarm "
        "at 0.5; inside the reference AF of the training patients the 25th percentile is "
        "0.8 or more (MIT-BIH 203: 0.80, CPSC 84: 0.97-0.99).",
        "Behar et al. 2013, IEEE TBME 60:1660 (SQI before arrhythmia alarms); measured, "
        "docs/detection-changes.md 2026-12-04")
    min_usable_fraction: float = setting(
        0.5,
        "A window whose span is less than half usable (SQI at least min_sqi) is not judged "
        "at all (neither AF nor not-AF). An open episode stays open across unusable "
        "windows for up to merge_gap_s.",
        "Behar et al. 2013, IEEE TBME 60:1660 (SQI gating of arrhythmia alarms); Clifford "
        "et al. 2012 (signal quality before rhythm analysis)")
    on_probability: float = setting(
        0.6,
        "A window starts (or continues) an AF candidate when p(AF) reaches this. Above "
        "the 0.5 decision point on purpose: hysteresis against flicker.",
        "engineering choice; model card models/af_rr/MODEL_CARD.md",
    )
    off_probability: float = setting(
        0.4,
        "An AF candidate or episode ends at the first window with p(AF) below this.",
        "engineering choice (hysteresis)",
    )
    min_duration_s: float = setting(
        30.0,
        "AF is reported once it has lasted 30 s: the conventional minimum duration of an "
        "AF episode (a 30 s ECG strip of irregular RR without P waves).",
        "2020 ESC Guidelines for the diagnosis and management of AF (Hindricks et al., "
        "Eur Heart J 2021;42:373), section 4: clinical AF definition >= 30 s",
    )
    burst_min_windows: int = setting(
        2,
        "An irregular run shorter than min_duration_s but scored AF on at least this many "
        "successive windows (2 windows of 32 RR, hop 8: about 40 beats) is reported as an "
        "af_burst finding (info priority: stored and sent for review, never an alarm). Short "
        "AF runs predict clinical AF and stroke, so they are kept, not dropped; one window "
        "alone is too easily ectopy.",
        "Binici et al. 2010, Circulation 121:1904 (excessive supraventricular ectopy and "
        "short AF runs predict AF and stroke); CPSC 2021 scores paroxysms of any length")
    merge_gap_s: float = setting(
        30.0,
        "AF that resumes within this time of an episode's end continues that episode "
        "instead of raising a new one (one ectopic-rich stretch must not split AF).",
        "engineering choice; alarm-fatigue control (IEC 60601-1-8)",
    )

    def __post_init__(self) -> None:
        labels = self.exclude_rr_labels
        if isinstance(labels, str) or not all(isinstance(v, str) for v in labels):
            raise ConfigError(f"af.exclude_rr_labels: expected a list of beat labels such as "
                              f'["V"], got {labels!r}')
        object.__setattr__(self, "exclude_rr_labels", tuple(labels))


@dataclass(frozen=True)
class BeatClassifierConfig:
    min_confidence: float = setting(
        0.5,
        "A beat gets the model's class only when its probability reaches this; otherwise "
        "it is labelled Q (unclassified) so rules never act on a coin toss.",
        "engineering choice; AAMI EC57 class Q for unclassifiable beats",
    )
    max_batch: int = setting(
        16,
        "Beats ready in the same signal window are classified in one call (batching "
        "amortises the per-call overhead, measured by `edge model bench`).",
    )
    normal_match_corr: float = setting(
        0.95,
        "A beat the model labels V is relabelled N when its QRS (+/- 150 ms) correlates with "
        "the template of the patient's recent N beats at this value or more (and has about "
        "the same amplitude): a ventricular beat has a QRS unlike the conducted beats. On the "
        "unannotated MIT-BIH records it removed 203 of 212 V labels on 202 (AF, published "
        "19 V); on the annotated records it lost no reference V beat and removed 3 false "
        "ones (docs/detection-changes.md). "
        "Above 1 turns the check off.",
        "Hamilton P, Open Source ECG Analysis, Computers in Cardiology 2002;29:101-104 "
        "(template matching to the dominant normal beat); Moody GB, Mark RG, Computers in "
        "Cardiology 1982:39-44",
    )
    normal_match_amplitude_ratio: float = setting(
        1.25,
        "The QRS amplitude must lie within this ratio of the normal template's, either way, "
        "for the match above: a beat of the same shape but much larger or smaller is not "
        "taken for a normal one.",
        "engineering choice (same rule family as normal_match_corr)",
    )
    paced: bool = setting(
        False,
        "The patient has a pacemaker. A paced QRS is wide like a ventricular one, so the beat "
        "model may label it V; with this set, a V beat that is not premature (its RR at least "
        "paced_v_max_rr_ratio of the local median RR) is labelled Q (paced), as EC57 classes "
        "paced beats. Set per patient with `paced = true` in [patients.<pseudonym>].",
        "ANSI/AAMI EC57 (paced beats are class Q); a demand pacemaker fires at the end of its "
        "escape interval, a PVC comes early (de Chazal 2004: prematurity as a PVC feature)",
    )
    paced_v_max_rr_ratio: float = setting(
        0.85,
        "In paced mode a V label stands only on a beat whose RR is below this fraction of the "
        "local median RR (premature); the same prematurity limit the beat features use for "
        "the normal template (edge.inference.features.DOMINANT_PRE_RR).",
        "engineering choice (same value as DOMINANT_PRE_RR)",
    )
    normal_template_beats: int = setting(
        16,
        "The normal template is the sample-wise median of the last this many beats labelled "
        "N: about 15 s, long enough to ignore a single odd beat, short enough to follow "
        "slow changes of the QRS (posture, electrode drift).",
        "engineering choice; the beat model's own template uses the same length",
    )


# -- vital signs, NEWS2, baselines, signal quality, per-patient overrides ------------------
# Sections below are used by edge.detect.{news2,vitals,baseline,quality,alarms} and
# edge.dsp.{ppg,resp}. Each field cites the guideline or paper its value comes from.

_RCP = "Royal College of Physicians, National Early Warning Score (NEWS) 2, December 2017"
_BTS = ("O'Driscoll BR et al., BTS guideline for oxygen use in adults in healthcare and "
        "emergency settings, Thorax 2017;72(Suppl 1):ii1-ii90")
_AASM = ("Berry RB et al., AASM Manual for the Scoring of Sleep and Associated Events v2.0 "
         "(2012), and the 2012 update, J Clin Sleep Med 8(5):597-619")
_LEYS = ("Leys C et al., Detecting outliers: do not use standard deviation around the mean, "
         "use absolute deviation around the median, J Exp Soc Psychol 2013;49:764-766")
_CLIFTON = ("Clifton L, Clifton DA, Pimentel MAF, Watkinson PJ, Tarassenko L, Predictive "
            "monitoring of mobile patients by combining clinical observations with data from "
            "wearable sensors, IEEE JBHI 2014;18(3):722-730")
_LI2008 = ("Li Q, Mark RG, Clifford GD, Robust heart rate estimation from multiple "
           "asynchronous noisy sources using signal quality indices and a Kalman filter, "
           "Physiol Meas 2008;29(1):15-32")
_BEHAR = ("Behar J, Oster J, Li Q, Clifford GD, ECG signal quality during arrhythmia and its "
          "application to false alarm reduction, IEEE TBME 2013;60(6):1660-1666")
_TEMKO = ("Temko A, Accurate heart rate monitoring during physical exercises using PPG, "
          "IEEE TBME 2017;64(9):2016-2024 (WFPV: Wiener filter + phase vocoder)")
_TROIKA = ("Zhang Z, Pi Z, Liu B, TROIKA: a general framework for heart rate monitoring using "
           "wrist-type photoplethysmographic signals during intensive physical exercise, "
           "IEEE TBME 2015;62(2):522-531")
_ELGENDI = ("Elgendi M et al., Systolic peak detection in acceleration photoplethysmograms "
            "measured from emergency responders in tropical conditions, PLoS ONE "
            "2013;8(10):e76585 (two event-related moving averages)")
_FORNEY = "Forney GD, The Viterbi algorithm, Proc IEEE 1973;61(3):268-278"
_SCHAFER = ("Schäfer A, Kratky KW, Estimation of breathing rate from respiratory sinus "
            "arrhythmia: comparison of various methods, Ann Biomed Eng 2008;36(3):476-485")
_CHARLTON = ("Charlton PH et al., An assessment of algorithms to estimate respiratory rate "
             "from the electrocardiogram and photoplethysmogram, Physiol Meas "
             "2016;37(4):610-626")
_IEC_ALARM = "IEC 60601-1-8:2006+A1:2012 (alarm systems: priorities, avoiding nuisance alarms)"


@dataclass(frozen=True)
class PpgConfig:
    """Heart rate from wrist/finger PPG (``edge.dsp.ppg``)."""

    band_low_hz: float = setting(
        0.5, "Lower edge of the PPG/accelerometer band-pass: 30 bpm, below any adult heart rate "
        "we report; removes respiration-induced baseline wander.", _TROIKA + ", sec. II-A")
    band_high_hz: float = setting(
        4.0, "Upper edge of the band-pass: 240 bpm, above the maximal exercise heart rate.",
        _TROIKA + ", sec. II-A")
    filter_order: int = setting(2, "Butterworth order of the band-pass (applied forward and "
                                   "backward per window: zero phase).")
    window_s: float = setting(
        8.0, "Spectral window: 8 s gives a 0.125 Hz (7.5 bpm) main lobe, refined by zero "
        "padding; the IEEE SPC 2015 reference is computed on the same 8 s windows.", _TROIKA)
    step_s: float = setting(2.0, "A heart rate every 2 s (IEEE SPC 2015 protocol).", _TROIKA)
    nfft: int = setting(4096, "FFT length (zero padding): 125 Hz / 4096 = 1.8 bpm bins.")
    hr_min_bpm: float = setting(40.0, "Lowest heart rate the tracker can report.")
    hr_max_bpm: float = setting(220.0, "Highest heart rate the tracker can report.")
    init_min_bpm: float = setting(50.0, "Plausible range of the first estimate (a person "
                                        "putting on a wearable).")
    init_max_bpm: float = setting(180.0, "Upper end of the plausible first estimate.")
    motion_acc_std: float = setting(
        0.05, "Accelerometer standard deviation (g, band-passed) above which an axis counts as "
        "moving and its spectrum is used to suppress motion artefact; tuned by "
        "leave-one-recording-out on IEEE SPC 2015 (see README).")
    wiener_weight: float = setting(
        10.0, "Weight of the accelerometer spectrum in the Wiener-type gain "
        "P^2 / (P^2 + w A^2) applied to the PPG spectrum; tuned (LOO) on IEEE SPC 2015.",
        _TEMKO + ", sec. II-B")
    spectrum_power: int = setting(
        1, "Exponent on spectral magnitudes before normalising (1 = magnitude, 2 = power).")
    max_step_bpm: float = setting(
        4.0, "Largest heart-rate change between two estimates 2 s apart that the tracker "
        "allows (Viterbi transition limit); exercise HR changes by a few bpm per 2 s; "
        "tuned (LOO) on IEEE SPC 2015.",
        _FORNEY + "; " + _TROIKA + " (spectral peak tracking)")
    transition_cost: float = setting(
        1.0, "Log-likelihood cost of a change of max_step_bpm (linear in |change|): how "
        "strongly the tracker prefers a steady rate over a louder distant peak; tuned "
        "(LOO) on IEEE SPC 2015.")
    emission_floor: float = setting(
        0.1, "Floor added to the normalised spectrum before the log (a bin with no energy is "
        "unlikely, not impossible): lets the track survive artefact-dominated windows.")
    lag_steps: int = setting(
        5, "Fixed-lag Viterbi decision: the estimate for a window is decided this many steps "
        "(x step_s) later, with future evidence. 5 = 10 s latency, acceptable for a trend "
        "vital; 0 = causal.", _FORNEY)
    peak_rest_min_distance_s: float = setting(
        0.3, "Time-domain peak detector (at rest): peaks closer than 300 ms (200 bpm) are one "
        "beat.", _ELGENDI)
    peak_w1_s: float = setting(0.111, "Systolic-peak moving-average window W1.",
                               _ELGENDI + ", optimal W1 = 111 ms")
    peak_w2_s: float = setting(0.667, "Beat moving-average window W2.",
                               _ELGENDI + ", optimal W2 = 667 ms")
    peak_beta: float = setting(0.02, "Offset beta of the block threshold.",
                               _ELGENDI + ", optimal beta = 0.02")
    min_quality: float = setting(
        0.3, "Below this spectral quality index the PPG heart rate is emitted with its "
        "quality but not used by rules (see vital_rules.min_quality).")


@dataclass(frozen=True)
class RespConfig:
    """Respiration rate from a respiration waveform (``edge.dsp.resp``)."""

    band_low_hz: float = setting(
        0.1, "6 breaths/min: lower edge of the respiration band (NEWS2 scores <= 8/min as 3).",
        _CHARLTON + ", sec. 2 (band 4-60 bpm commonly used)")
    band_high_hz: float = setting(
        1.0, "60 breaths/min: upper edge of the respiration band.", _CHARLTON)
    window_s: float = setting(
        32.0, "Analysis window: at least 3 breaths at 6/min; 32 s is the window most "
        "respiratory-rate algorithms use.", _CHARLTON + ", sec. 2.2")
    step_s: float = setting(5.0, "A respiration rate every 5 s.")
    count_threshold: float = setting(
        0.2, "Advanced counting: a breath is a peak-trough-peak cycle whose amplitude exceeds "
        "this fraction of the 75th percentile of cycle amplitudes.",
        _SCHAFER + " ('count-adv', threshold 0.3 x Q3; 0.2 tuned on BIDMC 01)")
    agreement_bpm: float = setting(
        3.0, "Quality is 1 when the breath-counting and spectral estimates agree within this "
        "many breaths/min, falling linearly to 0 at three times it (fusion by agreement).",
        _CHARLTON + " (fusion of estimates)")


@dataclass(frozen=True)
class EcgQualityConfig:
    """ECG signal quality indices (``edge.detect.quality``)."""

    window_s: float = setting(
        10.0, "SQIs are computed on 10 s windows, as in Li et al. and Behar et al.",
        _LI2008 + ", sec. 2.3")
    step_s: float = setting(5.0, "A quality value every 5 s (50 % overlap).")
    bsqi_tolerance_s: float = setting(
        0.15, "Two beat detectors agree on a beat when their detections are within 150 ms.",
        _LI2008 + ", sec. 2.3.1 (bSQI)")
    ksqi_clean: float = setting(
        5.0, "Kurtosis above 5 indicates a clean ECG (peaky QRS); Gaussian noise has 3.",
        _LI2008 + " (kSQI); " + _BEHAR)
    bassqi_clean: float = setting(
        0.95, "Fraction of power in 1-40 Hz above which baseline wander is negligible.",
        _LI2008 + " (basSQI)")
    usable_threshold: float = setting(
        0.5, "A window whose combined SQI is below this is unusable: rate rules do not alarm "
        "from it. Chosen for specificity on CinC 2017 (150 N vs 30 noisy records, mean SQI "
        "per record): 0.5 keeps 99.3 % of normal records and flags 47 % of noisy ones; the "
        "Youden point 0.7 (Se 83 %, Sp 94 %) would suppress alarms on 6 % of clean ECG.",
        _BEHAR + " (SQI-gated false-alarm reduction)")
    gate_min_usable_fraction: float = setting(
        0.5, "An ECG-derived alarm (tachycardia, AF, ventricular run...) whose episode lies "
        "mostly on unusable signal (less than this fraction of its seconds usable) is "
        "downgraded to info priority, with the reason in its details: kept and synced, but "
        "not an alarm. Noise makes false beats, and false beats make false rhythms.",
        _BEHAR + " (SQI-gated false-alarm reduction); IEC 60601-1-8 (alarm priorities)")


@dataclass(frozen=True)
class VitalRulesConfig:
    """Desaturation, fever, hypothermia, tachypnoea, bradypnoea (``edge.detect.vitals``)."""

    spo2_low_pct: float = setting(
        90.0, "Desaturation alarm limit on NEWS2 Scale 1 patients: below 90 % is hypoxaemia "
        "outside every target range of the BTS guideline (target 94-98 %).",
        _BTS + ", recommendations 6-8 (targets 94-98 %, 88-92 %)")
    spo2_low_clear_pct: float = setting(
        92.0, "Scale 1 desaturation ends when SpO2 is back at or above 92 % (hysteresis).",
        _BTS)
    spo2_urgent_pct: float = setting(
        85.0, "Below 85 % on Scale 1 the desaturation is urgent (severe hypoxaemia).",
        _BTS + ", sec. 6 (SpO2 < 85 % needs immediate assessment)")
    spo2_low_scale2_pct: float = setting(
        86.0, "Scale 2 (target 88-92 %, hypercapnic risk): alarm below 86 %, where NEWS2 "
        "Scale 2 starts to give 2 points.", _RCP + ", Chart 1 SpO2 Scale 2; " + _BTS)
    spo2_low_scale2_clear_pct: float = setting(
        88.0, "Scale 2 desaturation ends at the bottom of the 88-92 % target.", _BTS)
    spo2_urgent_scale2_pct: float = setting(
        80.0, "Below 80 % on Scale 2 the desaturation is urgent.", _BTS)
    desat_min_duration_s: float = setting(
        10.0, "A desaturation must last 10 s: the AASM minimum event duration, and long enough "
        "to ignore single-sample oximeter artefacts.", _AASM + ", respiratory rules III.1")
    desat_drop_pct: float = setting(
        3.0, "Relative desaturation: a fall of 3 percentage points or more below the "
        "patient's learned SpO2 baseline (AASM recommended hypopnoea rule; 4 % is the "
        "alternative CMS rule).", _AASM + ", rule VIII.4.A (3 %) / VIII.4.B (4 %)")
    fever_c: float = setting(
        38.0, "Fever at or above 38.0 C. The SCCM/IDSA ICU definition is 38.3 C; 38.0 C is the "
        "more sensitive ward threshold and matches the NEWS2 band edge (38.1 C scores 1).",
        "O'Grady NP et al., Crit Care Med 2008;36(4):1330-1349; " + _RCP + ", Chart 1")
    fever_clear_c: float = setting(37.7, "Fever ends below 37.7 C (0.3 C hysteresis).")
    hypothermia_c: float = setting(
        35.0, "Hypothermia below 35.0 C core temperature (NEWS2 scores <= 35.0 C as 3).",
        "Brown DJA et al., Accidental hypothermia, N Engl J Med 2012;367:1930-1938; " + _RCP)
    hypothermia_clear_c: float = setting(35.5, "Hypothermia ends above 35.5 C (hysteresis).")
    temperature_min_duration_s: float = setting(
        120.0, "A temperature condition must persist 2 min over at least 2 readings: one "
        "thermometer reading taken badly must not alarm.")
    temperature_min_readings: int = setting(
        2, "Readings needed to confirm a temperature condition (see temperature_min_duration_s).")
    tachypnoea_rpm: float = setting(
        25.0, "Tachypnoea at 25/min or more: the NEWS2 band that scores 3.",
        _RCP + ", Chart 1 respiration rate")
    tachypnoea_clear_rpm: float = setting(
        21.0, "Tachypnoea ends below 21/min (top of the NEWS2 0-point band is 20).", _RCP)
    bradypnoea_rpm: float = setting(
        8.0, "Bradypnoea at 8/min or less: the NEWS2 band that scores 3.",
        _RCP + ", Chart 1 respiration rate")
    bradypnoea_clear_rpm: float = setting(
        12.0, "Bradypnoea ends at 12/min or more (bottom of the NEWS2 0-point band).", _RCP)
    resp_min_duration_s: float = setting(
        60.0, "A respiration-rate condition must last 60 s: rate estimates use 32 s windows, "
        "so this needs several independent windows.", _CHARLTON)
    realert_s: float = setting(
        300.0, "A new episode of the same kind within 5 min of the last one reopens it instead "
        "of alarming again (alarm-fatigue control).", _IEC_ALARM)
    min_quality: float = setting(
        0.5, "Samples whose quality index is below this are not evidence for an alarm; they "
        "are counted in the episode details as 'low_quality_samples'.",
        _LI2008 + " (SQI-gated alarms); " + _BEHAR)
    downgrade_quality: float = setting(
        0.8, "An episode whose mean quality is below this is raised one priority lower "
        "(urgent -> warning -> info) and says so in its details.", _BEHAR)


@dataclass(frozen=True)
class BaselineConfig:
    """Personal baselines (``edge.detect.baseline``)."""

    learn_s: float = setting(
        86400.0, "A baseline is learned over the first 24 h of a patient's data before any "
        "deviation is flagged; after that it keeps rolling over the last window_s.",
        _CLIFTON + " (patient-personalised models after an initial period)")
    window_s: float = setting(
        86400.0, "Rolling window of the baseline once learned (24 h: covers the circadian "
        "cycle).", _CLIFTON)
    min_samples: int = setting(
        60, "At least this many good-quality samples before a baseline counts as learned.")
    bucket_s: float = setting(
        60.0, "Samples are reduced to one median per minute before the baseline statistics: "
        "bounded memory (1440 values per day) on a Pi, and a 1 Hz oximeter does not outweigh "
        "a 5-minutely thermometer.")
    k_mad_info: float = setting(
        3.0, "Deviation when a vital leaves median +/- 3 scaled MAD (a 'very conservative' "
        "outlier criterion per Leys et al.; 2.5 is their moderate choice).",
        _LEYS + ", sec. 'How to detect outliers'")
    k_mad_warning: float = setting(
        5.0, "Beyond 5 scaled MAD the deviation is a warning, not information.", _LEYS)
    min_duration_s: float = setting(
        300.0, "A deviation must last 5 min: baselines are for slow trends, not for single "
        "readings.", _CLIFTON)
    mad_floor_hr: float = setting(2.0, "Smallest MAD (bpm) used for heart rate: a very "
                                       "steady baseline must not make 3 bpm a deviation.")
    mad_floor_spo2: float = setting(0.5, "Smallest MAD (%) used for SpO2.")
    mad_floor_resp: float = setting(1.0, "Smallest MAD (/min) used for respiration rate.")
    mad_floor_temp: float = setting(0.1, "Smallest MAD (C) used for temperature.")
    min_quality: float = setting(0.5, "Only samples of at least this quality train the "
                                      "baseline or count as deviation evidence.")


@dataclass(frozen=True)
class News2Config:
    """NEWS2 scoring from sensors and clinician entries (``edge.detect.news2``)."""

    max_age_resp_s: float = setting(
        300.0, "A respiration rate older than 5 min is not used in a NEWS2 score.")
    max_age_spo2_s: float = setting(300.0, "An SpO2 older than 5 min is not used.")
    max_age_pulse_s: float = setting(300.0, "A pulse older than 5 min is not used.")
    max_age_sbp_s: float = setting(
        14400.0, "A cuff systolic BP older than 4 h is not used: cuffs measure intermittently; "
        "4 h is the NEWS2 low-risk observation interval (4-6-hourly).",
        _RCP + ", Chart 4 (monitoring frequency)")
    max_age_temp_s: float = setting(
        14400.0, "A temperature older than 4 h is not used (same reasoning as SBP).",
        _RCP + ", Chart 4")
    clinician_entry_max_age_s: float = setting(
        43200.0, "Clinician entries (air/oxygen, ACVPU) older than 12 h are stale: the "
        "longest NEWS2 observation interval is 12-hourly. A stale entry makes the score "
        "incomplete and is flagged.", _RCP + ", Chart 4")
    report_every_s: float = setting(60.0, "A NEWS2 result is emitted at most once a minute.")
    confirm_s: float = setting(
        60.0, "A change of the risk band (a rise, or the return to low) must persist 60 s "
        "of complete scores before an escalation is raised, raised further or ended: one "
        "outlying reading must not escalate.", _IEC_ALARM)
    priority_low_medium: str = setting(
        "warning", "Escalation to low-medium (a single red score): 'urgent ward-based "
        "response' -> warning.", _RCP + ", Chart 4")
    priority_medium: str = setting(
        "warning", "Escalation to medium (5-6): key threshold for urgent response -> warning.",
        _RCP + ", Chart 4")
    priority_high: str = setting(
        "urgent", "Escalation to high (7+): emergency response -> urgent.", _RCP + ", Chart 4")


@dataclass(frozen=True)
class PatientConfig:
    """Clinician-entered settings of one patient (``[patients.<pseudonym>]``).

    Inputs a wearable cannot give (SpO2 scale, air or oxygen, ACVPU) carry the
    time they were entered (ISO 8601 with zone, e.g. ``"2025-03-01T09:00:00Z"``)
    and who entered them; NEWS2 reports their age and flags stale ones.
    ``overrides`` changes any numeric setting for this patient only, by its
    ``section.field`` name (``"rate_rules.tachy_bpm" = 110``).
    """

    devices: tuple[str, ...] = setting(
        (), "Devices (stream key 'device' part) worn by this patient.")
    news2_eligible: bool = setting(
        False, "A clinician confirms NEWS2 applies: adult (16+), not pregnant. Without it no "
        "NEWS2 is computed (only partial sensor scores).", _RCP + " (intended population)")
    spo2_scale: int = setting(
        1, "NEWS2 SpO2 scale: 1 (default) or 2 (prescribed target 88-92 %, hypercapnic "
        "respiratory failure), chosen by a competent clinical decision-maker.",
        _RCP + ", Chart 1; " + _BTS)
    spo2_scale_entered_at: str = setting("", "When the scale was chosen (ISO 8601).")
    on_oxygen: str = setting(
        "", "'air' or 'oxygen' (any supplemental O2), or '' when unknown: a sensor cannot "
        "know it.", _RCP + ", Chart 1 'Air or oxygen?'")
    on_oxygen_entered_at: str = setting("", "When air/oxygen was recorded (ISO 8601).")
    consciousness: str = setting(
        "", "ACVPU: 'A', 'C' (new confusion), 'V', 'P', 'U', or '' when not assessed. Never "
        "inferred by the gateway.", _RCP + ", Chart 1 consciousness")
    consciousness_entered_at: str = setting("", "When ACVPU was assessed (ISO 8601).")
    entered_by: str = setting("", "Who entered the clinical inputs (role or pseudonymous id).")
    paced: bool = setting(
        False, "The patient has a pacemaker: beat labels follow [beat_classifier] paced for "
        "this patient's streams (paced beats are Q, never V).",
        "ANSI/AAMI EC57 (paced beats are class Q)")
    overrides: dict[str, float] = field(
        default_factory=dict,
        metadata={"rationale": "Per-patient values of numeric settings, by 'section.field' "
                  "(a clinical decision; every override is listed in episodes' details).",
                  "source": "engineering choice"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(self.devices))
        if self.spo2_scale not in (1, 2):
            raise ConfigError(f"spo2_scale: expected 1 or 2, got {self.spo2_scale!r}")
        if self.on_oxygen not in ("", "air", "oxygen"):
            raise ConfigError(f"on_oxygen: expected 'air', 'oxygen' or '', "
                              f"got {self.on_oxygen!r}")
        if self.consciousness not in ("", "A", "C", "V", "P", "U"):
            raise ConfigError(f"consciousness: expected one of A C V P U or '', "
                              f"got {self.consciousness!r}")
        for name in ("spo2_scale_entered_at", "on_oxygen_entered_at",
                     "consciousness_entered_at"):
            text = getattr(self, name)
            if text and parse_entry_time(text) is None:
                raise ConfigError(f"{name}: expected an ISO 8601 time with zone, got {text!r}")


def parse_entry_time(text: str) -> float | None:
    """UTC epoch seconds of an ISO 8601 time with a zone (``Z`` or ``+hh:mm``), else None."""
    from datetime import datetime

    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return dt.timestamp()


def patient_for_device(config: EdgeConfig, device: str) -> tuple[str, PatientConfig] | None:
    """The pseudonym and settings of the patient wearing ``device``, if configured."""
    for name, patient in config.patients.items():
        if device in patient.devices:
            return name, patient
    return None


def config_for_patient(config: EdgeConfig, patient: PatientConfig | None) -> EdgeConfig:
    """``config`` with the patient's ``overrides`` (and ``paced``) applied (itself if none)."""
    if patient is not None and patient.paced and not config.beat_classifier.paced:
        config = dataclasses.replace(config, beat_classifier=dataclasses.replace(
            config.beat_classifier, paced=True))
    if patient is None or not patient.overrides:
        return config
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in patient.overrides.items():
        section, _, name = dotted.partition(".")
        sections.setdefault(section, {})[name] = value
    changes = {}
    for section, values in sections.items():
        sub = getattr(config, section)
        types_ = typing.get_type_hints(type(sub))
        changes[section] = dataclasses.replace(
            sub, **{k: (float(v) if types_[k] is float else v) for k, v in values.items()})
    return dataclasses.replace(config, **changes)


def _check_overrides(config: EdgeConfig) -> None:
    for name, patient in config.patients.items():
        for dotted, value in patient.overrides.items():
            section, _, fname = dotted.partition(".")
            sub = getattr(config, section, None)
            where = f"patients.{name}.overrides.{dotted!r}"
            if sub is None or not dataclasses.is_dataclass(sub) or section == "patients":
                raise ConfigError(f"{where}: no settings section {section!r}")
            hints = typing.get_type_hints(type(sub))
            if fname not in hints:
                raise ConfigError(f"{where}: section {section!r} has no setting {fname!r}")
            if hints[fname] not in (float, int) or isinstance(value, bool) \
                    or not isinstance(value, int | float):
                raise ConfigError(f"{where}: only numeric settings can be overridden per "
                                  f"patient (got {value!r})")


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
    trace: TraceConfig = field(default_factory=TraceConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    af: AfConfig = field(default_factory=AfConfig)
    beat_classifier: BeatClassifierConfig = field(default_factory=BeatClassifierConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    ectopy: EctopyConfig = field(default_factory=EctopyConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    fhir: FhirConfig = field(default_factory=FhirConfig)
    ppg: PpgConfig = field(default_factory=PpgConfig)
    resp: RespConfig = field(default_factory=RespConfig)
    ecg_quality: EcgQualityConfig = field(default_factory=EcgQualityConfig)
    vital_rules: VitalRulesConfig = field(default_factory=VitalRulesConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    news2: News2Config = field(default_factory=News2Config)
    web: WebConfig = field(default_factory=WebConfig)
    patients: dict[str, PatientConfig] = field(
        default_factory=dict,
        metadata={"rationale": "Per-patient clinician settings and overrides: one "
                  "[patients.<pseudonym>] table each (never a name or MRN)."})

    def __post_init__(self) -> None:
        _check_overrides(self)


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


def config_warnings(config: EdgeConfig) -> list[str]:
    """Settings that load but are very likely wrong for a real deployment (one line each)."""
    out = []
    f = config.fhir
    if config.sync.url and not f.patient_reference and \
            f.patient_identifier_value == PATIENT_PLACEHOLDER:
        out.append(f"fhir.patient_identifier_value is still the placeholder "
                   f"{PATIENT_PLACEHOLDER!r} while sync is on: every episode would link to "
                   f"that placeholder patient; set the pseudonym of the patient this gateway "
                   f"is assigned to")
    return out


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
        item_cls = typing.cast(
            type, [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)][0])
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
