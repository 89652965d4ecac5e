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


@dataclass(frozen=True)
class EdgeConfig:
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    qrs: QrsConfig = field(default_factory=QrsConfig)
    heart_rate: HeartRateConfig = field(default_factory=HeartRateConfig)
    rate_rules: RateRulesConfig = field(default_factory=RateRulesConfig)
    store: StoreConfig = field(default_factory=StoreConfig)


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
        sub = getattr(config, section.name)
        lines += ["", f"[{section.name}]"]
        for f in dataclasses.fields(sub):
            meta = f.metadata
            if meta.get("rationale"):
                lines.append(f"# {meta['rationale']}")
            if meta.get("source"):
                lines.append(f"# source: {meta['source']}")
            value = getattr(sub, f.name)
            if isinstance(value, str):
                rendered = f'"{value}"'
            elif isinstance(value, bool):
                rendered = repr(value).lower()
            else:
                rendered = repr(value)
            lines.append(f"{f.name} = {rendered}")
    return "\n".join(lines) + "\n"
