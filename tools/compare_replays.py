"""Compare two `edge replay --json --beats` runs of one record (e.g. arm64 vs native x86).

    python tools/compare_replays.py REF.json REF-beats.csv TEST.json TEST-beats.csv

Beats are matched by sample index; the report gives matched beats, beats only in
one run, label agreement of the matched ones, and the episodes of each run by
kind with onsets. Exit 1 when fewer than 99 % of the beats match with the same
label, or the episode kinds or counts differ.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter


def beats(path: str) -> dict[int, str]:
    with open(path, encoding="utf-8") as fh:
        return {int(r["index"]): r["label"] for r in csv.DictReader(fh)}


def main() -> int:
    ref_j, ref_b, test_j, test_b = sys.argv[1:5]
    ref, test = beats(ref_b), beats(test_b)
    common = ref.keys() & test.keys()
    same = sum(ref[i] == test[i] for i in common)
    frac = same / max(1, len(ref))
    print(f"beats: {len(ref)} reference, {len(test)} under test, {len(common)} at the same "
          f"sample, {same} with the same label ({frac:.4f} of the reference)")
    print(f"labels: reference {dict(Counter(ref.values()))}, under test "
          f"{dict(Counter(test.values()))}")
    with open(ref_j, encoding="utf-8") as a, open(test_j, encoding="utf-8") as b:
        e_ref, e_test = json.load(a)["episodes"], json.load(b)["episodes"]
    k_ref = Counter(e["kind"] for e in e_ref)
    k_test = Counter(e["kind"] for e in e_test)
    print(f"episodes: reference {dict(k_ref)}, under test {dict(k_test)}")
    on_ref = sorted((e["kind"], e.get("onset_index")) for e in e_ref)
    on_test = sorted((e["kind"], e.get("onset_index")) for e in e_test)
    print(f"episode onsets identical: {on_ref == on_test}")
    ok = frac >= 0.99 and k_ref == k_test
    print("ok" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
