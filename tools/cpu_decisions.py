"""Decisions of every shipped model file on real records, on this CPU; and their comparison.

    python tools/cpu_decisions.py run OUT.json RECORD...     # on the CPU under test
    python tools/cpu_decisions.py compare REF.json TEST.json # REF: native fp32

``run`` computes each model's features once per record with the runtime's own
code, runs every file the manifests list (ONNX and TFLite, each precision),
and writes the decisions. ``compare`` checks each file of TEST against the
same file and the fp32 ONNX decisions of REF (normally the native x86 run):
see :func:`compare`. It prints one line per file and record and exits 1 when
any fails.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIN_AGREEMENT = 0.99


def run(out: Path, records: list[str], cpu_label: str) -> None:
    from edge.errors import BackendUnavailableError
    from edge.inference import list_models, load_model
    from edge.inference.cpu import cpu_summary
    from edge.inference.inputs import features_from_signal
    from edge.trace.recordings import load_wfdb

    res: dict = {"cpu": cpu_label or cpu_summary()["cpu"], "machine": platform.machine(),
                 "python": platform.python_version(), "records": {}}
    signals = {r: load_wfdb(r, annotator=None) for r in records}
    for man in list_models():
        for r, rec in signals.items():
            x, where = features_from_signal(man.spec, rec.signal[:, 0], rec.fs)
            row = res["records"].setdefault(Path(r).name, {}).setdefault(man.name, {})
            for f in man.files:
                try:
                    m = load_model(f.path)
                except BackendUnavailableError as exc:
                    row[f"{f.format}/{f.precision}"] = {"unavailable": str(exc)}
                    continue
                dec = man.decide(m.run(x))
                row[f"{f.format}/{f.precision}"] = {
                    "decisions": "".join(man.classes[int(k)][0] for k in dec),
                    "classes": list(man.classes)}
    out.write_text(json.dumps(res))
    print(f"{out}: {res['cpu']}, {len(records)} records")


def _agree(a: str, b: str) -> float:
    x, y = np.frombuffer(a.encode(), "u1"), np.frombuffer(b.encode(), "u1")
    return float(np.mean(x == y)) if len(x) else 1.0


def compare(ref_path: Path, test_path: Path) -> int:
    """Each file under test vs the same file and vs fp32 ONNX on the reference CPU.

    Fails when a file decides differently from itself on the reference CPU (below
    99.5 %: a kernel that computes differently on this CPU), and for the beat model
    when it agrees with fp32 on fewer than 99 % of beats or its V count is off by
    more than max(3, 5 %). Agreement of int8 with fp32 for the other models is
    printed: it is the file's quantization error, the same on every CPU.
    """
    ref, test = json.loads(ref_path.read_text()), json.loads(test_path.read_text())
    failures = 0
    print(f"reference: {ref['cpu']}; under test: {test['cpu']}")
    for rec, models in sorted(test["records"].items()):
        for name, files in sorted(models.items()):
            base = ref["records"][rec][name]["onnx/fp32"]["decisions"]
            for key, v in sorted(files.items()):
                if "unavailable" in v:
                    print(f"  SKIP {rec} {name} {key}: {v['unavailable']}")
                    continue
                d = v["decisions"]
                own = ref["records"][rec][name].get(key, {}).get("decisions")
                if len(d) != len(base) or own is None:
                    print(f"  FAIL {rec} {name} {key}: rows or file differ from the reference")
                    failures += 1
                    continue
                same, vs32 = _agree(d, own), _agree(d, base)
                ok = same >= 0.995
                extra = ""
                if name == "beat_nsv":
                    v_test, v_ref = d.count("V"), base.count("V")
                    limit = max(3.0, 0.05 * v_ref)
                    ok = ok and vs32 >= MIN_AGREEMENT and abs(v_test - v_ref) <= limit
                    extra = f", V {v_test} vs fp32 {v_ref} (limit +-{limit:g})"
                failures += not ok
                print(f"  {'ok  ' if ok else 'FAIL'} {rec} {name} {key}: {len(d)} decisions, "
                      f"{same:.4f} equal to the same file on the reference CPU, {vs32:.4f} "
                      f"to fp32{extra}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def record(results: list[Path], how: str, cpu: str) -> None:
    """Write one CPU's results into every manifest's ``quantization.cross_cpu`` list.

    ``results``: the ``*-verify.json`` of ``edge model verify --json`` and the
    ``*-compare.txt`` of :func:`compare` that ``tools/check_cpus.sh`` wrote.
    """
    import time

    from edge.inference import default_models_dir

    verify = json.loads(next(p for p in results if p.suffix == ".json").read_text())
    compare_txt = next(p for p in results if p.suffix == ".txt").read_text()
    for mp in sorted(default_models_dir().glob("*/manifest.json")):
        raw = json.loads(mp.read_text())
        name = raw["name"]
        files = [f for f in verify["files"] if f["model"] == name]
        golden = ", ".join(f"{f['file'].split('.', 1)[1]} {f['golden']['agreement']:.3f}"
                           for f in files if "golden" in f)
        lines = [ln for ln in compare_txt.splitlines() if f" {name} " in ln]
        fails = sum(ln.strip().startswith("FAIL") for ln in lines)
        records = (f"{len(lines) - fails} of {len(lines)} file x record checks pass: every "
                   "file's decisions identical to the same file on the reference CPU"
                   if all("1.0000 equal to the same file" in ln for ln in lines)
                   else f"{fails} of {len(lines)} file x record checks fail")
        entry = {"cpu": cpu, "how": how, "date": time.strftime("%Y-%m-%d"),
                 "golden": golden, "records": records}
        q = raw.setdefault("quantization", {})
        q["cross_cpu"] = [c for c in q.get("cross_cpu", []) if c["cpu"] != cpu] + [entry]
        mp.write_text(json.dumps(raw, indent=2) + "\n")
        print(mp, entry)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="action", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("records", nargs="+")
    r.add_argument("--cpu", default="", help="Name of the (emulated) CPU for the report.")
    c = sub.add_parser("compare")
    c.add_argument("ref", type=Path)
    c.add_argument("test", type=Path)
    w = sub.add_parser("record", help="write one CPU's results into the manifests")
    w.add_argument("results", type=Path, nargs=2, help="VERIFY.json COMPARE.txt")
    w.add_argument("--how", required=True)
    w.add_argument("--cpu", required=True)
    a = ap.parse_args()
    if a.action == "run":
        run(a.out, a.records, a.cpu)
    elif a.action == "record":
        record(a.results, a.how, a.cpu)
    else:
        sys.exit(compare(a.ref, a.test))


if __name__ == "__main__":
    main()
