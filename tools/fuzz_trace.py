"""Fuzz the trace reader: mutated real traces, each checked against what it must replay.

Each mutated trace is a window of a real trace (the shipped MIT-BIH 208 demo trace,
and the same signal re-recorded by today's writer, with its repeated stream
declarations), damaged by one of: up to 50 flipped bits, an insertion of up to 1 KiB
(random, zero or 0xFF bytes), a deletion of up to 4 KiB, a truncation. The reader
must replay every record the damage did not touch, report exactly the samples lost
between replayed blocks and the bytes it dropped (``edge.sim.trace_damage.judge``),
never raise and never hang (a per-trace watchdog).

It also damages the whole demo trace with 50 flipped bytes (``--demo-runs`` times)
and reports the share of samples still replayed: the issue's acceptance case.

    python tools/fuzz_trace.py [--traces 100000] [--seed 1] [--demo-runs 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.sim.trace_damage import KINDS, judge, mutate, parse, rerecord, window  # noqa: E402
from edge.trace.format import RecordType, read_trace  # noqa: E402
from edge.types import Block  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "edge" / "demo_data" / "mitdb208-5min.vetrace"
WATCHDOG_S = 10


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--demo-runs", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="fuzz-trace-"))
    sources = []
    for path in (DEMO, rerecord(DEMO, work / "rerecorded.vetrace")):
        raw = path.read_bytes()
        head, recs = parse(raw)
        items = list(read_trace(path)[1])
        by_rec, j = {}, 0
        for r in recs:
            if r.rtype != RecordType.STREAM:
                by_rec[r.offset] = items[j]
                j += 1
        sources.append((raw, head, recs, by_rec))
    signal.signal(signal.SIGALRM, _alarm)
    counts = {k: 0 for k in KINDS}
    crashes, hangs, wrong, slowest = 0, 0, [], 0.0
    damaged_records = 0
    target = work / "mutated.vetrace"
    t0 = time.perf_counter()
    for n in range(args.traces):
        raw, head, recs, by_rec = sources[n % len(sources)]
        start = int(rng.integers(1, len(recs)))
        w, wrecs, picked = window(raw, head, recs, start, int(rng.integers(8, 300)))
        original = [by_rec[r.offset] for r in picked if r.rtype != RecordType.STREAM]
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        mutated, damaged, desc = mutate(w, head, wrecs, rng, kind)
        target.write_bytes(mutated)
        counts[kind] += 1
        damaged_records += len(damaged)
        t1 = time.perf_counter()
        signal.alarm(WATCHDOG_S)
        try:
            verdict = judge(original, wrecs, head, target, damaged, len(mutated))
            if not verdict.ok:
                wrong.append(f"{desc}: {verdict.problem}")
                keep = work / f"wrong-{n}"
                keep.mkdir()
                (keep / "intact.vetrace").write_bytes(w)
                (keep / "mutated.vetrace").write_bytes(mutated)
        except Hang:
            hangs += 1
        except Exception as exc:  # noqa: BLE001 - every exception is a finding
            crashes += 1
            wrong.append(f"{desc}: {type(exc).__name__}: {exc}")
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    demo = _demo_flips(sources[0], work, rng, args.demo_runs)
    if not demo.pop("all_ok"):
        wrong.append("the whole demo trace with 50 flipped bytes was misread")
    out = {"demo_50_flipped_bytes": demo, "mutated_traces": args.traces, "by_kind": counts,
           "damaged_records": damaged_records,
           "crashes": crashes, "hangs": hangs, "wrong": len(wrong) - crashes,
           "examples": wrong[:10], "kept_in": str(work), "seconds": round(wall, 1),
           "slowest_trace_ms": round(slowest * 1e3, 1), "seed": args.seed}
    target.unlink(missing_ok=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if demo["runs"]:
            print(f"demo trace, 50 flipped bytes, {demo['runs']} runs: median "
                  f"{demo['replayed_pct_median']} % of samples replayed (min "
                  f"{demo['replayed_pct_min']} %, {demo['runs_under_90_pct']} runs under 90 %)")
        print(f"{args.traces} mutated traces ({counts}) in {wall:.0f} s: {crashes} crashes, "
              f"{hangs} hangs, {len(wrong) - crashes} wrong replays or reports")
        for line in wrong[:10]:
            print("  " + line)
    raise SystemExit(1 if wrong or hangs else 0)


def _demo_flips(source: tuple, work: Path, rng: np.random.Generator, runs: int,
                ) -> dict[str, Any]:
    """50 random bytes of the whole demo trace replaced by other values, ``runs`` times."""
    raw, head, recs, by_rec = source
    original = [by_rec[r.offset] for r in recs if r.rtype != RecordType.STREAM]
    total = sum(r.n for r in recs)
    starts = np.array([r.offset for r in recs])
    shares, ok = [], True
    for _ in range(runs):
        out = bytearray(raw)
        positions = head + rng.choice(len(raw) - head, 50, replace=False)
        for p in positions:
            out[int(p)] ^= int(rng.integers(1, 256))
        hit = {int(np.searchsorted(starts, p, side="right")) - 1 for p in positions}
        path = work / "demo-flipped.vetrace"
        path.write_bytes(bytes(out))
        verdict = judge(original, recs, head, path, hit, len(out))
        ok = ok and verdict.ok
        info, items = read_trace(path)
        replayed = sum(b.n_samples for b in items if isinstance(b, Block))
        shares.append(100.0 * replayed / total)
    if not shares:
        return {"runs": 0, "all_ok": True}
    return {"runs": runs, "replayed_pct": round(float(np.mean(shares)), 2),
            "replayed_pct_median": round(float(np.median(shares)), 2),
            "replayed_pct_min": round(float(np.min(shares)), 2),
            "runs_under_90_pct": sum(1 for x in shares if x < 90.0), "all_ok": ok}


if __name__ == "__main__":
    main()
