"""Train the beat classifier N / S / V (``models/beat_nsv``) on labelled real beats.

Data (read-only, from EDGE_DATA_DIR): MIT-BIH records 100 and 208 (``atr``
beat labels) and CPSC 2021 subjects 21, 84, 101 (beat labels in ``.atr``).
Beats are the repository's own QRS detections (``edge.dsp.qrs.ecg_peaks``)
matched within 150 ms to a reference beat, whose symbol maps to its AAMI
class (N: N L R e j; S: A a J S; V: V E). F and Q beats, and detections with
no reference beat, still pass through the feature extractor (its template
sees them at run time too) but are not training targets.

Split by record/patient: the shipped model is trained on every record except
CPSC subject 101, which is held out for the fp32/int8 and ONNX/TFLite
figures. Leave-one-patient-out cross-validation (5 folds: mitdb 100, mitdb
208, CPSC 21, 84, 101) gives the quality figures in the model card; V beats
are plentiful in one patient only (208), which the CV result makes visible.

    pip install -e ".[train]" && python tools/train_beats.py [--epochs 40] [--seed 0]
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

NAME = "beat_nsv"
VERSION = "1.0.0"
CLASSES = F.BEAT_CLASSES
AAMI = {**dict.fromkeys("NLRej", 0), **dict.fromkeys("AaJS", 1), **dict.fromkeys("VE", 2)}
REFERENCE_BEATS = set("NLRejAaJSVEF/fQ")
HELD_OUT = "cpsc101"


def record_beats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(features of detected beats, label per beat: 0/1/2, or -1 = not a target)."""
    rec = load_wfdb(path)
    sig = rec.signal[:, 0].astype(np.float64)
    det = ecg_peaks(sig, rec.fs)
    rows, ok = F.beat_feature_rows(sig, rec.fs, det)
    ref_i = np.array([i for i, s in zip(rec.ann_index, rec.ann_symbol, strict=True)
                      if s in REFERENCE_BEATS], dtype=np.int64)
    ref_s = [s for s in rec.ann_symbol if s in REFERENCE_BEATS]
    labels = np.full(len(det), -1)
    tol = 0.150 * rec.fs
    pos = np.searchsorted(ref_i, det)
    for k, d in enumerate(det):
        best = None
        for j in (pos[k] - 1, pos[k]):
            if 0 <= j < len(ref_i) and abs(ref_i[j] - d) <= tol and (
                    best is None or abs(ref_i[j] - d) < abs(ref_i[best] - d)):
                best = j
        if best is not None:
            labels[k] = AAMI.get(ref_s[best], -1)
    labels[~ok] = -1
    return rows, labels


def load_all(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for r in ("100", "208"):
        groups.setdefault(f"mitdb{r}", []).append(record_beats(root / "mitdb" / r))
    for hea in sorted((root / "cpsc2021").glob("*.hea")):
        subject = hea.stem.split("_")[1]
        groups.setdefault(f"cpsc{subject}", []).append(record_beats(hea.with_suffix("")))
    return {g: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v]))
            for g, v in groups.items()}


#: Beats drawn per class for training: N kept plentiful so that irregular rhythms
#: (AF) are not pushed into S/V; rare classes oversampled only moderately.
PER_CLASS = (6000, 600, 2000)


def balanced_index(y: np.ndarray, rng: np.random.Generator,
                   per_class: tuple[int, ...]) -> np.ndarray:
    idx = []
    for k in range(len(CLASSES)):
        members = np.flatnonzero(y == k)
        if len(members):
            n = per_class[k]
            idx.append(rng.choice(members, n, replace=len(members) < n))
    return np.concatenate(idx)


def fit(x: np.ndarray, y: np.ndarray, epochs: int, seed: int):  # type: ignore[no-untyped-def]
    keep = y >= 0
    x, y = x[keep], y[keep]
    mean, std = tc.normalisation(x)
    rng = np.random.default_rng(seed)
    idx = balanced_index(y, rng, PER_CLASS)
    model = tc.train_mlp((x[idx] - mean) / std, y[idx], (48, 24), len(CLASSES), epochs, seed,
                         dropout=0.2, l2=1e-3)
    return model, mean, std


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cv", action="store_true", help="skip the leave-one-patient-out CV")
    ap.add_argument("--out", type=Path, default=tc.REPO / "models" / NAME)
    args = ap.parse_args()
    t0 = time.time()
    data = load_all(tc.data_root())
    counts = {g: {c: int(np.sum(y == k)) for k, c in enumerate(CLASSES)}
              for g, (_, y) in data.items()}
    print(f"data ready in {time.time() - t0:.0f} s: {counts}")

    # -- leave-one-patient-out CV (fp32 Keras) ------------------------------------------
    cv: dict[str, object] = {}
    if not args.no_cv:
        yt_all, yp_all = [], []
        for g in data:
            tx = np.concatenate([data[h][0] for h in data if h != g])
            ty = np.concatenate([data[h][1] for h in data if h != g])
            model, mean, std = fit(tx, ty, args.epochs, args.seed)
            vx, vy = data[g]
            keep = vy >= 0
            pred = np.argmax(model.predict((vx[keep] - mean) / std, verbose=0), axis=1)
            cv[g] = tc.class_metrics(vy[keep], pred, CLASSES)
            yt_all.append(vy[keep])
            yp_all.append(pred)
            print("CV held out", g, {c: cv[g][c] for c in CLASSES})  # type: ignore[index]
        cv["pooled"] = tc.class_metrics(np.concatenate(yt_all), np.concatenate(yp_all), CLASSES)

    # -- shipped model --------------------------------------------------------------------
    tx = np.concatenate([data[h][0] for h in data if h != HELD_OUT])
    ty = np.concatenate([data[h][1] for h in data if h != HELD_OUT])
    model, mean, std = fit(tx, ty, args.epochs, args.seed)
    rng = np.random.default_rng(args.seed)
    calib_idx = balanced_index(ty, rng, (200, 50, 150))
    files = tc.export_all(model, args.out, NAME, (tx[calib_idx] - mean) / std)
    manifest = {
        "name": NAME,
        "version": VERSION,
        "task": "ECG beat class N / S / V (AAMI EC57) from a beat-centred window and RR ratios",
        "input": {
            "features": F.BEAT_FEATURES,
            "n_features": F.BEAT_N_FEATURES,
            "feature_names": [f"beat_{i}" for i in range(F.BEAT_N)]
            + [f"diff_{i}" for i in range(F.BEAT_N)] + list(F.BEAT_SCALARS),
            "source": "first ECG channel (mV) around each detected beat",
            "sample_rate_hz": F.BEAT_FS,
            "min_sample_rate_hz": 100.0,
            "window": {"beat_pre_s": F.BEAT_PRE_S, "beat_post_s": F.BEAT_POST_S,
                       "filter_segment_s": [-F.SEG_PRE_S, F.SEG_POST_S],
                       "bandpass_hz": [0.5, 40.0], "template_beats": F.TEMPLATE_BEATS,
                       "post_rr_cap_s": F.POST_RR_CAP_S},
            "preprocessing": "edge.inference.features.BeatFeatureExtractor / beat_feature_rows",
            "normalisation": {"method": "(x - mean) / std, training-set statistics",
                              "mean": [round(float(v), 6) for v in mean],
                              "std": [round(float(v), 6) for v in std]},
        },
        "outputs": {"classes": list(CLASSES), "activation": "softmax", "decision": "argmax"},
        "thresholds": {"min_confidence": 0.0},
        "files": files,
        "training": {
            "script": "tools/train_beats.py", "seed": args.seed, "epochs": args.epochs,
            "architecture": "MLP 147-48-24-3, ReLU, dropout 0.2, L2 1e-3, Adam 2e-3, "
                            "resampling N/S/V to 6000/600/2000 beats",
            "data": ["MIT-BIH Arrhythmia Database records 100, 208 (Moody & Mark 2001), "
                     "ODC-BY 1.0",
                     "CPSC 2021 subjects 21, 84, 101 (Wang et al. 2021), CC BY 4.0"],
            "licence": "model Apache-2.0; trained on data under ODC-BY 1.0 / CC BY 4.0",
            "beat_counts": counts,
            "split": {"method": "by patient", "train": sorted(h for h in data if h != HELD_OUT),
                      "held_out": [HELD_OUT]},
        },
    }
    tc.write_manifest(args.out, manifest)

    def decide(p: np.ndarray) -> np.ndarray:
        return np.argmax(p, axis=1)

    hx, hy = data[HELD_OUT]
    keep = hy >= 0
    m_h, a_h = tc.evaluate_files(args.out, hx[keep], hy[keep], decide)
    # Agreement (not quality) on the V-rich record, which is in the training set.
    vx, vy = data["mitdb208"]
    k2 = vy >= 0
    _, a_208 = tc.evaluate_files(args.out, vx[k2], vy[k2], decide)
    manifest["metrics"] = {
        "unit": "beats (detected, matched to a reference beat within 150 ms)",
        "held_out_cpsc101": {"by_file": m_h},
        "leave_one_patient_out_cv_fp32": cv,
    }
    manifest["agreement"] = {"held_out_cpsc101": a_h,
                             "mitdb208_training_record_agreement_only": a_208,
                             "tolerance": "decisions_equal >= 0.98 between ONNX and TFLite "
                                          "of the same precision (tests enforce it)"}
    manifest["limits"] = [
        "Ventricular beats come almost entirely from one patient (MIT-BIH 208): "
        "generalisation to other PVC morphologies is measured only by the "
        "leave-one-patient-out CV and is uncertain.",
        "Supraventricular (S) beats are scarce (62 in total, 2 patients): S figures "
        "are indicative only.",
        "F (fusion) and Q beats are not output classes; they are classified as N or V.",
        "Adults only; paced rhythms (Q beats) are out of scope.",
    ]
    tc.write_manifest(args.out, manifest)
    print(f"done in {time.time() - t0:.0f} s")
    for f, m in m_h.items():
        print("held-out cpsc101", f, {c: m[c] for c in CLASSES})
    print("agreement", a_h, a_208)
    if cv:
        print("CV pooled", cv["pooled"])


if __name__ == "__main__":
    main()
