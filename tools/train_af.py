"""Train the AF detector (``models/af_rr``) from RR-interval windows of real recordings.

Data (read-only, from EDGE_DATA_DIR): CinC 2017 validation (records labelled
A -> AF, N and O -> not AF; ~ noisy records left out) and CPSC 2021 subjects
21, 84 and 101 (window label from the ``(AFIB`` rhythm annotations). Beats
come from the repository's own QRS detector (``edge.dsp.qrs.ecg_peaks``), as
at run time, so the model learns the RR intervals it will be fed.

Split by patient, never by window: CinC records are separate patients
(30 % held out, stratified by label, seed 0); CPSC subject 101 (paroxysmal
AF) is held out whole, 21 and 84 train. Held-out metrics go to the manifest.

    pip install -e ".[train]" && python tools/train_af.py [--epochs 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_common as tc  # noqa: E402

from edge.dsp.qrs import ecg_peaks  # noqa: E402
from edge.inference import features as F  # noqa: E402
from edge.trace.recordings import load_wfdb  # noqa: E402

NAME = "af_rr"
VERSION = "1.0.0"
CLASSES = ("non_af", "af")
TRAIN_HOP = 4
EVAL_HOP = 8  # the runtime's hop (AfConfig.hop_beats)
CPSC_TEST_SUBJECTS = {"101"}
THRESHOLDS = {"af_on": 0.6, "af_off": 0.4, "decision": 0.5}


def cinc_windows(root: Path, hop: int) -> tuple[list[np.ndarray], list[int], list[str], dict]:
    rows, labels, names = [], [], []
    skipped = {"noisy": 0, "short": 0}
    for name, label, sig, fs in tc.load_cinc2017(root):
        if label == "~":
            skipped["noisy"] += 1
            continue
        peaks = ecg_peaks(sig, fs)
        win, _ = F.rr_windows(peaks, fs, hop)
        if len(win) == 0:
            skipped["short"] += 1
            continue
        rows.append(win)
        labels.append(1 if label == "A" else 0)
        names.append(name)
    return rows, labels, names, skipped


def cpsc_windows(root: Path, hop: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for hea in sorted((root / "cpsc2021").glob("*.hea")):
        rec = load_wfdb(hea.with_suffix(""))
        sig = rec.signal[:, 0].astype(np.float64)
        mask = tc.rhythm_mask(rec)
        peaks = ecg_peaks(sig, rec.fs)
        win, ends = F.rr_windows(peaks, rec.fs, hop)
        frac = np.array([mask[peaks[e - F.AF_WINDOW_RR]:peaks[e]].mean() for e in ends])
        out[rec.name] = (win, frac)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=tc.REPO / "models" / NAME)
    args = ap.parse_args()
    t0 = time.time()
    root = tc.data_root()

    # -- data ---------------------------------------------------------------------------
    c_rows, c_lab, c_names, skipped = cinc_windows(root, TRAIN_HOP)
    c_eval_rows, _, c_eval_names, _ = cinc_windows(root, EVAL_HOP)
    train_names, test_names = tc.stratified_split(c_names, [str(v) for v in c_lab], 0.3,
                                                  args.seed)
    cp_train = cpsc_windows(root, TRAIN_HOP)
    cp_eval = cpsc_windows(root, EVAL_HOP)
    print(f"data ready in {time.time() - t0:.0f} s; CinC records used {len(c_names)}, "
          f"skipped {skipped}")

    xs, ys, ws = [], [], []
    for rows, lab, name in zip(c_rows, c_lab, c_names, strict=True):
        if name in train_names:
            xs.append(F.af_features(rows))
            ys.append(np.full(len(rows), lab))
            ws.append(np.full(len(rows), 1.0 / len(rows)))  # each record weighs the same
    for rec, (win, frac) in cp_train.items():
        subject = rec.split("_")[1]
        if subject in CPSC_TEST_SUBJECTS or len(win) == 0:
            continue
        keep = (frac <= 0.2) | (frac >= 0.8)  # ambiguous transition windows left out
        xs.append(F.af_features(win[keep]))
        ys.append((frac[keep] >= 0.5).astype(int))
        ws.append(np.full(int(keep.sum()), 0.05))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    mean, std = tc.normalisation(x)
    xn = (x - mean) / std
    # Sample weights -> repeat records fairly; balance the classes.
    w = w / w.mean()
    for k in (0, 1):
        w[y == k] *= len(y) / (2 * max(1, int(np.sum(y == k))))
    rng = np.random.default_rng(args.seed)
    reps = rng.poisson(np.clip(w, 0.05, 20))
    idx = np.repeat(np.arange(len(y)), reps)
    print(f"train windows {len(y)} (AF {int(y.sum())}), resampled {len(idx)}")

    model = tc.train_mlp(xn[idx], y[idx], (32, 16), 2, args.epochs, args.seed)
    files = tc.export_all(model, args.out, NAME, xn[rng.choice(len(xn), 400, replace=False)])

    manifest = {
        "name": NAME,
        "version": VERSION,
        "task": "Atrial fibrillation vs any other rhythm, from a window of 32 RR intervals",
        "input": {
            "features": F.AF_FEATURES,
            "n_features": F.AF_N_FEATURES,
            "feature_names": [f"rr_norm_{i}" for i in range(F.AF_WINDOW_RR)]
            + list(F.AF_SCALARS),
            "source": "beats (R-peak sample indices) of one ECG stream",
            "sample_rate_hz": None,
            "min_sample_rate_hz": None,
            "window": {"rr_intervals": F.AF_WINDOW_RR, "hop_beats": EVAL_HOP},
            "preprocessing": "edge.inference.features.af_features(rr_seconds)",
            "normalisation": {"method": "(x - mean) / std, training-set statistics",
                              "mean": [round(float(v), 6) for v in mean],
                              "std": [round(float(v), 6) for v in std]},
        },
        "outputs": {"classes": list(CLASSES), "activation": "softmax"},
        "thresholds": THRESHOLDS,
        "files": files,
        "training": {
            "script": "tools/train_af.py", "seed": args.seed, "epochs": args.epochs,
            "architecture": "MLP 41-32-16-2, ReLU, dropout 0.1, L2 1e-4, Adam 2e-3",
            "data": [
                "PhysioNet/CinC Challenge 2017 validation set (Clifford et al. 2017), ODC-BY 1.0",
                "CPSC 2021 (Wang et al. 2021, PhysioNet), CC BY 4.0",
            ],
            "licence": "model Apache-2.0; trained on data under ODC-BY 1.0 / CC BY 4.0",
            "beats": "edge.dsp.qrs.ecg_peaks (the runtime's QRS detector)",
            "split": {"method": "by record/patient",
                      "cinc_train_records": len(train_names),
                      "cinc_test_records": len(test_names),
                      "cinc_test": sorted(test_names),
                      "cpsc_train_subjects": ["21", "84"],
                      "cpsc_test_subjects": sorted(CPSC_TEST_SUBJECTS)},
        },
    }
    tc.write_manifest(args.out, manifest)

    # -- held-out evaluation --------------------------------------------------------------
    def decide(p: np.ndarray) -> np.ndarray:
        return (p[:, 1] >= THRESHOLDS["decision"]).astype(int)

    ex, ey = [], []
    rec_true, rec_rows = [], []
    c_lab_by = dict(zip(c_names, c_lab, strict=True))
    for rows, name in zip(c_eval_rows, c_eval_names, strict=True):
        if name in test_names:
            ex.append(F.af_features(rows))
            ey.append(np.full(len(rows), c_lab_by[name]))
            rec_true.append(c_lab_by[name])
            rec_rows.append(len(rows))
    cinc_x, cinc_y = np.concatenate(ex), np.concatenate(ey)
    cp_x, cp_y = [], []
    for rec, (win, frac) in cp_eval.items():
        if rec.split("_")[1] in CPSC_TEST_SUBJECTS and len(win):
            cp_x.append(F.af_features(win))
            cp_y.append((frac >= 0.5).astype(int))
    cpsc_x, cpsc_y = np.concatenate(cp_x), np.concatenate(cp_y)
    m_c, a_c = tc.evaluate_files(args.out, cinc_x, cinc_y, decide)
    m_p, a_p = tc.evaluate_files(args.out, cpsc_x, cpsc_y, decide)
    manifest["metrics"] = {
        "unit": "RR windows (32 RR, hop 8 beats) on held-out patients; decision p(af) >= 0.5",
        "cinc2017_test": {"records": len(test_names), "windows": len(cinc_y),
                          "af_windows": int(cinc_y.sum()), "by_file": m_c},
        "cpsc2021_subject_101": {"windows": len(cpsc_y), "af_windows": int(cpsc_y.sum()),
                                 "by_file": m_p},
    }
    manifest["agreement"] = {"cinc2017_test": a_c, "cpsc2021_subject_101": a_p,
                             "tolerance": "decisions_equal >= 0.98 between ONNX and TFLite "
                                          "of the same precision (tests enforce it)"}
    manifest["limits"] = [
        "Held-out sets are small (CinC test ~80 records, one CPSC subject): confidence "
        "intervals are wide; see MODEL_CARD.md.",
        "Atrial flutter with regular conduction and frequent ectopy can look like AF or not.",
        "Needs 32 consecutive beats without a gap; a QRS detector failure (noise) corrupts RR.",
        "Adults only; not validated on paced rhythms.",
    ]
    tc.write_manifest(args.out, manifest)
    print(f"done in {time.time() - t0:.0f} s")
    for k, v in manifest["metrics"].items():
        if isinstance(v, dict):
            for f, m in v["by_file"].items():
                print(k, f, "AF", m["af"], "acc", m["accuracy"])
    print("agreement", a_c, a_p)


if __name__ == "__main__":
    main()
