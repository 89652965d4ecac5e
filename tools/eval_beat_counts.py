"""Beat and V-beat counts on the unannotated MIT-BIH records, against the published totals.

Usage::

    python tools/eval_beat_counts.py [--data DIR] [--json]

``../shared/data/mitdb-signal-only`` holds nine MIT-BIH Arrhythmia Database
records without their annotation files. Their per-record beat totals are
published in the database's directory (Moody & Mark, *MIT-BIH Arrhythmia
Database Directory*, table of beats by type), so the pipeline's beat count and
V-beat count can be compared with them. This is a weak check, not an
evaluation: a count can match while individual beats are wrong, so it bounds
sensitivity (detected V <= Se * reference V + false V) but gives neither Se
nor +P. Since beat_nsv 2.0.0 is trained on MIT-BIH DS1, 106, 108 and 223
(DS1) are training records (their counts check agreement, not
generalisation); 113, 121, 202, 231 and 232 are DS2 records no model here
was trained or tuned on; 104 is paced (outside DS1 and DS2).

Every beat goes through the live pipeline (replay, default configuration,
shipped models), as in ``edge evaluate``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edge.config import EdgeConfig  # noqa: E402
from edge.detect.models import ModelSet  # noqa: E402
from edge.evaluate.af import replay_with_models  # noqa: E402
from edge.trace.recordings import data_dir, load_wfdb  # noqa: E402

#: MIT-BIH Arrhythmia Database Directory: all beats, and V-class beats (V + E),
#: per record. 104 is paced.
PUBLISHED = {
    "104": {"beats": 2229, "v": 2, "note": "paced"},
    "106": {"beats": 2027, "v": 520, "note": "multiform PVCs, bigeminy"},
    "108": {"beats": 1763, "v": 17, "note": "large P waves, noise, first-degree block"},
    "113": {"beats": 1795, "v": 0, "note": "sinus arrhythmia"},
    "121": {"beats": 1863, "v": 1, "note": "sinus"},
    "202": {"beats": 2136, "v": 19, "note": "atrial flutter and AF episodes"},
    "223": {"beats": 2605, "v": 489, "note": "multiform PVCs, VT runs"},
    "231": {"beats": 1571, "v": 2, "note": "RBBB, 2:1 AV block"},
    "232": {"beats": 1780, "v": 0, "note": "RBBB, 1382 APCs, long pauses"},
}


def split(name: str) -> str:
    """Where the record sits in the inter-patient protocol (de Chazal 2004)."""
    from model_data import DS1, DS2

    return "DS1 (training)" if name in DS1 else "DS2 (test)" if name in DS2 else "paced"


def count_labels(path: Path, config: EdgeConfig, models: ModelSet) -> Counter[str]:
    """How many beats of each label the pipeline gives the record."""
    beats, _ = asyncio.run(replay_with_models(load_wfdb(path), config, models))
    return Counter(b.label for b in beats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="data folder (default $EDGE_DATA_DIR or ../shared/data)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = (Path(args.data) if args.data else data_dir()) / "mitdb-signal-only"
    config = EdgeConfig()
    models = ModelSet.from_config(config)
    rows = []
    for name, ref in PUBLISHED.items():
        labels = count_labels(root / name, config, models)
        rows.append({"record": name, "beats": labels.total(), "beats_published": ref["beats"],
                     "v": labels["V"], "v_published": ref["v"], "labels": dict(labels),
                     "note": ref["note"], "split": split(name)})
    if args.json:
        print(json.dumps({"records": rows}, indent=2))
        return
    print("| record | split | beats (published) | V beats (published) | note |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['record']} | {r['split']} | {r['beats']} ({r['beats_published']}) | "
              f"{r['v']} ({r['v_published']}) | {r['note']} |")


if __name__ == "__main__":
    main()
