#!/usr/bin/env python3
"""Seeded scenario traces of vital-sign numerics: what the real recordings lack.

The shared recordings have no labelled SpO2 desaturations, temperatures or
blood pressures. This generator writes *synthetic, labelled* sequences of
:class:`~edge.types.VitalSample` for the unit tests of the vital rules, the
baselines and NEWS2. It is **never** used to report detection quality: that is
measured on real recordings only.

Each scenario is a list of segments (duration, target value per vital) with
Gaussian measurement noise, a 1 Hz oximeter / 0.2 Hz respiration / 1/60 Hz
thermometer, and the expected episodes as labels. Same seed, same samples.

    python tools/gen_vitals_scenarios.py --list
    python tools/gen_vitals_scenarios.py desaturation --seed 1 --out desat.vetrace
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.types import VITAL_UNITS, StreamKey, VitalKind, VitalSample  # noqa: E402

KEY = StreamKey("scenario", "vitals")

#: Sampling period (s) and measurement noise (SD) per vital: a typical wearable set.
PERIOD = {VitalKind.SPO2: 1.0, VitalKind.HEART_RATE: 1.0, VitalKind.RESP_RATE: 5.0,
          VitalKind.TEMPERATURE: 60.0, VitalKind.SYSTOLIC_BP: 900.0}
NOISE = {VitalKind.SPO2: 0.4, VitalKind.HEART_RATE: 1.5, VitalKind.RESP_RATE: 0.7,
         VitalKind.TEMPERATURE: 0.05, VitalKind.SYSTOLIC_BP: 3.0}
NORMAL = {VitalKind.SPO2: 97.0, VitalKind.HEART_RATE: 72.0, VitalKind.RESP_RATE: 15.0,
          VitalKind.TEMPERATURE: 36.8, VitalKind.SYSTOLIC_BP: 124.0}


@dataclass
class Scenario:
    """Segments of (duration s, {vital: value}); values ramp linearly between segments."""

    name: str
    description: str
    segments: list[tuple[float, dict[VitalKind, float]]]
    expected: list[str] = field(default_factory=list)  # episode kinds it should raise
    quality_dips: list[tuple[float, float, float]] = field(default_factory=list)  # t0, t1, q


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("normal", "an hour of normal vitals", [(3600, {})]),
    Scenario("desaturation", "SpO2 97 % -> 86 % for 2 min -> 97 %",
             [(300, {}), (20, {VitalKind.SPO2: 86.0}), (120, {VitalKind.SPO2: 86.0}),
              (20, {}), (300, {})], ["desaturation"]),
    Scenario("severe_desaturation", "SpO2 falls to 80 %: urgent",
             [(300, {}), (30, {VitalKind.SPO2: 80.0}), (90, {VitalKind.SPO2: 80.0}),
              (30, {}), (300, {})], ["desaturation"]),
    Scenario("artefact_desaturation", "a 2 min SpO2 dip the device marks as low quality",
             [(300, {}), (10, {VitalKind.SPO2: 84.0}), (120, {VitalKind.SPO2: 84.0}),
              (10, {}), (300, {})], [], [(300.0, 440.0, 0.2)]),
    Scenario("brief_dip", "SpO2 88 % for 6 s: shorter than the minimum duration",
             [(300, {}), (1, {VitalKind.SPO2: 88.0}), (6, {VitalKind.SPO2: 88.0}),
              (1, {}), (300, {})], []),
    Scenario("fever", "temperature rises to 38.6 C over 30 min and stays 1 h",
             [(1800, {}), (1800, {VitalKind.TEMPERATURE: 38.6}),
              (3600, {VitalKind.TEMPERATURE: 38.6})], ["fever"]),
    Scenario("hypothermia", "temperature falls to 34.6 C",
             [(1800, {}), (1800, {VitalKind.TEMPERATURE: 34.6}),
              (3600, {VitalKind.TEMPERATURE: 34.6})], ["hypothermia"]),
    Scenario("tachypnoea", "respiration rate 15 -> 28/min for 5 min",
             [(600, {}), (60, {VitalKind.RESP_RATE: 28.0}), (300, {VitalKind.RESP_RATE: 28.0}),
              (60, {}), (600, {})], ["tachypnoea"]),
    Scenario("bradypnoea", "respiration rate 15 -> 6/min for 5 min",
             [(600, {}), (60, {VitalKind.RESP_RATE: 6.0}), (300, {VitalKind.RESP_RATE: 6.0}),
              (60, {}), (600, {})], ["bradypnoea"]),
    Scenario("deterioration", "NEWS2 0 -> 5 -> 14 over an hour (sepsis-like), then recovery",
             [(600, {}),
              (900, {VitalKind.RESP_RATE: 22.0, VitalKind.SPO2: 94.4, VitalKind.SYSTOLIC_BP: 108.0,
                     VitalKind.HEART_RATE: 100.0}),
              (600, {VitalKind.RESP_RATE: 22.0, VitalKind.SPO2: 94.4, VitalKind.SYSTOLIC_BP: 108.0,
                     VitalKind.HEART_RATE: 100.0}),
              (900, {VitalKind.RESP_RATE: 27.0, VitalKind.SPO2: 89.0, VitalKind.SYSTOLIC_BP: 95.0,
                     VitalKind.HEART_RATE: 128.0, VitalKind.TEMPERATURE: 39.4}),
              (600, {VitalKind.RESP_RATE: 27.0, VitalKind.SPO2: 89.0, VitalKind.SYSTOLIC_BP: 95.0,
                     VitalKind.HEART_RATE: 128.0, VitalKind.TEMPERATURE: 39.4}),
              (1800, {})], ["news2_escalation"]),
    Scenario("hr_drift", "2 h at rest (baseline; learn_s <= 2 h), then heart rate 100 for 1 h",
             [(7200, {}), (600, {VitalKind.HEART_RATE: 100.0}),
              (3600, {VitalKind.HEART_RATE: 100.0}), (600, {})], ["hr_deviation"]),
]}


def generate(name: str, seed: int = 0, start: float = 0.0,
             kinds: tuple[VitalKind, ...] = tuple(PERIOD)) -> list[VitalSample]:
    """The samples of scenario ``name``, time-ordered; deterministic for a seed."""
    sc = SCENARIOS[name]
    rng = np.random.default_rng(seed)
    # piecewise-linear targets: knots at segment ends
    knots_t = [0.0]
    knots_v = [dict(NORMAL)]
    for dur, vals in sc.segments:
        knots_t.append(knots_t[-1] + dur)
        knots_v.append({**NORMAL, **vals})
    total = knots_t[-1]
    out: list[VitalSample] = []
    for kind in kinds:
        t = np.arange(0.0, total, PERIOD[kind])
        target = np.interp(t, knots_t, [v[kind] for v in knots_v])
        value = target + rng.normal(0.0, NOISE[kind], t.size)
        if kind is VitalKind.SPO2:
            value = np.clip(value, 0.0, 100.0)
        quality = np.ones(t.size)
        for t0, t1, q in sc.quality_dips:
            quality[(t >= t0) & (t < t1)] = q
        digits = 1 if kind is VitalKind.TEMPERATURE else 0
        for ti, vi, qi in zip(t, value, quality, strict=True):
            out.append(VitalSample(KEY, kind, round(float(vi), digits), VITAL_UNITS[kind],
                                   float(ti), start + float(ti), quality=float(qi),
                                   source="scenario"))
    out.sort(key=lambda s: (s.device_time, s.kind.value))
    return out


def write_trace(path: str | Path, samples: list[VitalSample], name: str, seed: int) -> None:
    """Write the samples as a vitals-edge trace (``edge replay`` can stream it)."""
    from edge.trace.format import TraceWriter

    meta = {"generator": "tools/gen_vitals_scenarios.py", "scenario": name, "seed": seed,
            "synthetic": True, "expected": SCENARIOS[name].expected}
    with TraceWriter(path, meta) as w:
        for s in samples:
            w.write(s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write a vitals-edge trace here")
    ap.add_argument("--list", action="store_true", help="list the scenarios")
    args = ap.parse_args(argv)
    if args.list or not args.scenario:
        for sc in SCENARIOS.values():
            print(f"{sc.name:24s} {sc.description}  -> {sc.expected or 'no episode'}")
        return 0
    samples = generate(args.scenario, args.seed)
    if args.out:
        write_trace(args.out, samples, args.scenario, args.seed)
        print(f"{len(samples)} samples -> {args.out}")
    else:
        for s in samples[:20]:
            print(f"{s.device_time:8.1f} {s.kind.value:12s} {s.value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
