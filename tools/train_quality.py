"""Train the ECG signal-quality model (``models/ecg_quality``): usable vs noisy 5 s windows.

Data (read-only, from EDGE_DATA_DIR): CinC 2017 validation (``~`` records ->
noisy, N/A/O -> usable; 30 % of records held out, stratified, seed 0), MIT-BIH
100 and CPSC 2021 subject 21 (usable, train), European ST-T excerpts e0103 and
e0110 (usable, train), e0124 (usable, held out), and the MIT-BIH Noise Stress
Test excerpts of record 118, all held out: 118e00 and 118e06 (SNR 0 and 6 dB ->
noisy), 118e24 (24 dB -> usable); 118e12 is left out as ambiguous.

    pip install -e ".[train]" && python tools/train_quality.py [--epochs 80] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_common as tc  # noqa: E402

from edge.inference import features as F  # noqa: E402
from edge.trace.recordings import load_wfdb  # noqa: E402

NAME = "ecg_quality"
VERSION = "1.0.0"
CLASSES = ("usable", "noisy")


def windows(sig: np.ndarray, fs: float) -> np.ndarray:
    n = int(F.QUALITY_WINDOW_S * fs)
    rows = [F.quality_features(sig[s:s + n], fs) for s in range(0, len(sig) - n + 1, n)]
    return np.stack(rows) if rows else np.zeros((0, F.QUALITY_N_FEATURES), np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=tc.REPO / "models" / NAME)
    args = ap.parse_args()
    t0 = time.time()
    root = tc.data_root()
    cinc = tc.load_cinc2017(root)
    names = [c[0] for c in cinc]
    labels = ["noisy" if c[1] == "~" else "usable" for c in cinc]
    train_names, test_names = tc.stratified_split(names, labels, 0.3, args.seed)
    tr_x, tr_y, tr_w, te = [], [], [], {}
    for (name, _, sig, fs), lab in zip(cinc, labels, strict=True):
        w = windows(sig, fs)
        y = np.full(len(w), CLASSES.index(lab))
        if name in train_names:
            tr_x.append(w)
            tr_y.append(y)
            tr_w.append(np.full(len(w), 1.0 / max(1, len(w))))
        else:
            te.setdefault("cinc2017_test", []).append((w, y))
    for path in (root / "mitdb" / "100", root / "cpsc2021" / "data_21_8"):
        rec = load_wfdb(path, annotator=None)
        w = windows(rec.signal[:, 0].astype(np.float64), rec.fs)
        tr_x.append(w)
        tr_y.append(np.zeros(len(w), int))
        tr_w.append(np.full(len(w), 0.05))
    for name, dest in (("e0103", "train"), ("e0110", "train"), ("e0124", "edb_e0124_test")):
        sig = np.loadtxt(root / "edb-excerpts-csv" / f"{name}.csv")
        w = windows(sig, 250.0)
        if dest == "train":
            tr_x.append(w)
            tr_y.append(np.zeros(len(w), int))
            tr_w.append(np.full(len(w), 0.05))
        else:
            te.setdefault(dest, []).append((w, np.zeros(len(w), int)))
    for name, lab in (("118e00", 1), ("118e06", 1), ("118e24", 0)):
        sig = np.loadtxt(root / "nstdb-118e-csv" / f"{name}.csv")
        w = windows(sig, 360.0)
        te.setdefault("nstdb118_test", []).append((w, np.full(len(w), lab)))
    x, y, w = np.concatenate(tr_x), np.concatenate(tr_y), np.concatenate(tr_w)
    mean, std = tc.normalisation(x)
    w = w / w.mean()
    for k in (0, 1):
        w[y == k] *= len(y) / (2 * max(1, int(np.sum(y == k))))
    rng = np.random.default_rng(args.seed)
    idx = np.repeat(np.arange(len(y)), rng.poisson(np.clip(w, 0.05, 20)))
    print(f"data ready in {time.time() - t0:.0f} s: train windows {len(y)} "
          f"(noisy {int(y.sum())}), resampled {len(idx)}")
    xn = (x - mean) / std
    model = tc.train_mlp(xn[idx], y[idx], (16, 8), 2, args.epochs, args.seed)
    files = tc.export_all(model, args.out, NAME, xn[rng.choice(len(xn), 400, replace=False)])
    manifest = {
        "name": NAME, "version": VERSION,
        "task": "ECG signal quality of a 5 s window: usable vs noisy",
        "input": {
            "features": F.QUALITY_FEATURES, "n_features": F.QUALITY_N_FEATURES,
            "feature_names": list(F.QUALITY_SCALARS),
            "source": "one ECG channel (mV), consecutive 5 s windows",
            "sample_rate_hz": None, "min_sample_rate_hz": 100.0,
            "window": {"seconds": F.QUALITY_WINDOW_S, "hop_s": F.QUALITY_WINDOW_S},
            "preprocessing": "edge.inference.features.quality_features(window_mv, fs)",
            "normalisation": {"method": "(x - mean) / std, training-set statistics",
                              "mean": [round(float(v), 6) for v in mean],
                              "std": [round(float(v), 6) for v in std]},
        },
        "outputs": {"classes": list(CLASSES), "activation": "softmax", "decision": "argmax"},
        "thresholds": {"noisy": 0.5},
        "files": files,
        "training": {
            "script": "tools/train_quality.py", "seed": args.seed, "epochs": args.epochs,
            "architecture": "MLP 9-16-8-2, ReLU, dropout 0.1, L2 1e-4, Adam 2e-3",
            "data": ["PhysioNet/CinC Challenge 2017 validation set, ODC-BY 1.0",
                     "MIT-BIH Arrhythmia DB 100, MIT-BIH Noise Stress Test DB 118e*, "
                     "European ST-T DB excerpts, ODC-BY 1.0", "CPSC 2021 subject 21, CC BY 4.0"],
            "licence": "model Apache-2.0; trained on data under ODC-BY 1.0 / CC BY 4.0",
            "split": {"method": "by record/patient", "cinc_train_records": len(train_names),
                      "cinc_test_records": len(test_names),
                      "held_out_other": ["nstdb 118e00/06/24", "edb e0124"]},
        },
    }
    tc.write_manifest(args.out, manifest)

    def decide(p: np.ndarray) -> np.ndarray:
        return (p[:, 1] >= 0.5).astype(int)

    manifest["metrics"] = {"unit": "5 s windows of held-out records"}
    manifest["agreement"] = {"tolerance": "decisions_equal >= 0.98 between ONNX and TFLite "
                                          "of the same precision (tests enforce it)"}
    for key, parts in te.items():
        tx = np.concatenate([a for a, _ in parts])
        ty = np.concatenate([b for _, b in parts])
        m, a = tc.evaluate_files(args.out, tx, ty, decide)
        manifest["metrics"][key] = {"windows": len(ty), "noisy_windows": int(ty.sum()),
                                    "by_file": m}
        manifest["agreement"][key] = a
        for f, v in m.items():
            print(key, f, "noisy", v["noisy"], "usable", v["usable"])
    manifest["limits"] = [
        "Noise examples are few: 30 CinC noisy records and one NSTDB patient (118); "
        "electrode-motion artefact at 6-12 dB is the hardest case.",
        "Not yet wired into the pipeline: `edge model run` applies it to a recording.",
    ]
    tc.write_manifest(args.out, manifest)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
