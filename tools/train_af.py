"""Train the AF detector (``models/af_rr``), validated by patient (grouped cross-validation).

Patients (never windows) are the unit: each CinC 2017 validation record is a
different patient (labels A -> AF, N and O -> not AF; ``~`` noisy records are
not trained on but are scored: no AF must be called on them), each MIT-BIH
DS1 record is a patient (201 and 203 with AF, the other 20 with ectopy,
pauses, bigeminy; window labels from the ``(AFIB`` rhythm notes, atrial
flutter windows left out of training), each CPSC 2021 subject is a patient
(21 no AF, 84 persistent, 101 paroxysmal; its records stay together).

Beats, beat labels and the ECG signal quality come from the runtime itself
(``tools/af_data.py`` replays every record through the standard chain with
the shipped QRS detector and beat classifier), and the RR windows are made by
the runtime's :class:`edge.detect.af.RrWindower`: RR intervals next to beats
labelled ``[af] exclude_rr_labels`` are left out and windows on unusable
signal are not judged, exactly as at run time.

Protocol: 5 folds, patients stratified by "has AF" and dealt in turn so that
MIT-BIH 201 / 203 and the three CPSC subjects fall in different folds. For
each fold an MLP is trained on the other folds' patients and scores the
held-out patients' windows; the runtime's episode tracker
(:func:`edge.detect.af.episodes_offline`) turns them into episodes, scored
per patient like ``edge evaluate --task af``. The shipped model is then
trained on all patients. No MIT-BIH DS2 record is read (asserted).

    pip install -e ".[train]" && python tools/af_data.py && python tools/train_af.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import af_data  # noqa: E402
import model_data as md  # noqa: E402
import requantize  # noqa: E402
import train_common as tc  # noqa: E402

from edge.config import AfConfig, EcgQualityConfig  # noqa: E402
from edge.detect.af import (  # noqa: E402
    AF_BURST,
    AF_EPISODE,
    RrWindow,
    episodes_offline,
    judged,
    rr_windows_from_beats,
    usable_fraction,
)
from edge.detect.quality import QualityTimeline  # noqa: E402
from edge.evaluate.af import score_row, score_spans  # noqa: E402
from edge.inference import features as F  # noqa: E402

NAME = "af_rr"
VERSION = "2.0.0"
CLASSES = ("non_af", "af")
TRAIN_HOP = 4
FOLDS = 5
THRESHOLDS = {"af_on": 0.6, "af_off": 0.4, "decision": 0.5}
HIDDEN = (32, 16)


def patient_of(record: str) -> str:
    """The patient a record belongs to (CPSC subjects span several records)."""
    src, name = record.split("/")
    if src == "cpsc2021":
        return f"cpsc2021/{name.split('_')[1]}"
    return record


def _frac(a: int, b: int, spans: np.ndarray) -> float:
    if b <= a or len(spans) == 0:
        return 0.0
    inter = np.clip(np.minimum(spans[:, 1], b) - np.maximum(spans[:, 0], a), 0, None)
    return float(inter.sum()) / (b - a)


class Record:
    """One record's runtime windows, their labels and whether each may be judged."""

    def __init__(self, name: str, d: dict[str, Any], hop: int, cfg: AfConfig,
                 qcfg: EcgQualityConfig) -> None:
        self.name = name
        self.fs = float(d["fs"])
        self.n = int(d["n"])
        self.af = np.asarray(d["af"]).reshape(-1, 2)
        self.afl = np.asarray(d["afl"]).reshape(-1, 2)
        self.windows: list[RrWindow] = rr_windows_from_beats(
            d["beat_index"], [str(v) for v in d["beat_label"]], self.fs, hop,
            cfg.exclude_rr_labels)
        tl = QualityTimeline(qcfg.usable_threshold, keep=1 << 20)
        for a, b, v in zip(d["q_start"], d["q_end"], d["q_value"], strict=True):
            tl.add(int(a), int(b), float(v))
        q = [usable_fraction(tl.quality_at, w.start, w.end, self.fs, cfg.min_sqi)
             for w in self.windows]
        self.judged = np.array([judged(w, v, cfg) for w, v in zip(self.windows, q, strict=True)],
                               bool)
        self.af_frac = np.array([_frac(w.start, w.end, self.af) for w in self.windows])
        self.afl_frac = np.array([_frac(w.start, w.end, self.afl) for w in self.windows])
        self.x = (F.af_features(np.stack([w.rr for w in self.windows]))
                  if self.windows else np.zeros((0, F.AF_N_FEATURES), np.float32))

    def training_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Judged windows clearly AF (>= 80 % AF time) or clearly not (<= 20 %, no flutter)."""
        pos = (self.af_frac >= 0.8) & self.judged
        neg = (self.af_frac <= 0.2) & (self.afl_frac <= 0.2) & self.judged
        keep = pos | neg
        return self.x[keep], pos[keep].astype(np.int64)


def load_patients(cache: Path, hop: int, cfg: AfConfig, qcfg: EcgQualityConfig,
                  ) -> tuple[dict[str, list[Record]], dict[str, str]]:
    """Records grouped by patient; the CinC label of each CinC patient."""
    cinc_labels = af_data.fill_cinc(cache)
    names = af_data.training_records() + sorted(cinc_labels)
    assert not any(md.is_ds2(r) for r in names), "a DS2 record among the AF training records"
    out: dict[str, list[Record]] = {}
    for r in names:
        out.setdefault(patient_of(r), []).append(Record(r, af_data.load(r, cache), hop, cfg,
                                                        qcfg))
    return out, cinc_labels


def assign_folds(patients: dict[str, list[Record]], seed: int) -> dict[str, int]:
    """Patients stratified by "has AF", dealt in turn (same source apart) into FOLDS folds."""
    rng = np.random.default_rng(seed)
    fold: dict[str, int] = {}
    k = 0
    for has_af in (True, False):
        group = [p for p, recs in patients.items()
                 if any(len(r.af) for r in recs) == has_af]
        rng.shuffle(group)
        group.sort(key=lambda p: p.split("/")[0])  # stable: same source dealt in turn
        for p in group:
            fold[p] = k % FOLDS
            k += 1
    return fold


def fit(patients: dict[str, list[Record]], which: list[str], seed: int, epochs: int,
        cinc_labels: dict[str, str]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """An MLP trained on the judged windows of ``which``; (model, mean, std, x raw)."""
    xs, ys = [], []
    for p in which:
        for r in patients[p]:
            if cinc_labels.get(r.name) == "~":
                continue  # noisy CinC records: scored, not trained on
            x, y = r.training_rows()
            xs.append(x)
            ys.append(y)
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    mean, std = tc.normalisation(x)
    w = np.ones(len(y))
    for k in (0, 1):
        w[y == k] *= len(y) / (2 * max(1, int(np.sum(y == k))))
    rng = np.random.default_rng(seed)
    idx = np.repeat(np.arange(len(y)), rng.poisson(np.clip(w, 0.05, 20)))
    model = tc.train_mlp((x[idx] - mean) / std, y[idx], HIDDEN, 2, epochs, seed)
    return model, mean, std, x


def record_scores(r: Record, probs: np.ndarray, cfg: AfConfig) -> dict[str, float]:
    p: list[float | None] = [float(v) if j else None
                             for v, j in zip(probs, r.judged, strict=True)]
    spans = episodes_offline(p, r.windows, cfg, r.fs)
    det = [(a, b) for k, a, b in spans if k == AF_EPISODE]
    bursts = [(a, b) for k, a, b in spans if k == AF_BURST]
    ref = [(int(a), int(b)) for a, b in r.af]
    c = score_spans(ref, det, r.fs, cfg.min_duration_s, bursts)
    c["minutes"] = r.n / r.fs / 60.0
    return c


def _add(total: dict[str, float], c: dict[str, float]) -> None:
    for k, v in c.items():
        total[k] = total.get(k, 0) + v


def cross_validate(patients: dict[str, list[Record]], train_patients: dict[str, list[Record]],
                   cinc_labels: dict[str, str], cfg: AfConfig, seed: int, epochs: int,
                   ) -> dict[str, Any]:
    folds = assign_folds(patients, seed)
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, float]] = {}
    cinc_rec: list[tuple[str, str, float, int]] = []  # name, label, mean p, judged windows
    oof: dict[str, np.ndarray] = {}  # held-out p(AF) of every window, by record
    for k in range(FOLDS):
        t0 = time.time()
        train = [p for p, f in folds.items() if f != k]
        test = [p for p, f in folds.items() if f == k]
        model, mean, std, _ = fit(train_patients, train, seed, epochs, cinc_labels)
        for p in sorted(test):
            pc: dict[str, float] = {}
            for r in patients[p]:
                probs = (model.predict((r.x - mean) / std, verbose=0)[:, 1] if len(r.x)
                         else np.zeros(0))
                oof[r.name] = probs
                if r.name.startswith("cinc2017/"):
                    j = r.judged
                    cinc_rec.append((r.name, cinc_labels[r.name],
                                     float(np.mean(probs[j])) if j.any() else 0.0,
                                     int(j.sum())))
                    continue
                _add(pc, record_scores(r, probs, cfg))
            if pc:
                src = p.split("/")[0]
                _add(totals.setdefault(src, {}), pc)
                rows.append({**score_row(p, pc), "fold": k})
        print(f"fold {k}: {len(train)} train / {len(test)} test patients, "
              f"{time.time() - t0:.0f} s", flush=True)
    # CinC records (10-60 s, shorter than an episode): a record is AF when the mean p(AF)
    # of its judged windows reaches the decision threshold; F1 of the AF class.
    judged = [(lab, pm) for _, lab, pm, n in cinc_rec if n > 0 and lab != "~"]
    tp = sum(1 for lab, pm in judged if lab == "A" and pm >= THRESHOLDS["decision"])
    fp = sum(1 for lab, pm in judged if lab != "A" and pm >= THRESHOLDS["decision"])
    fn = sum(1 for lab, pm in judged if lab == "A" and pm < THRESHOLDS["decision"])
    noisy = [(pm, n) for _, lab, pm, n in cinc_rec if lab == "~"]
    cinc = {"records_judged": len(judged), "af_records": sum(lab == "A" for lab, _ in judged),
            "tp": tp, "fp": fp, "fn": fn,
            "se": round(tp / max(1, tp + fn), 4), "ppv": round(tp / max(1, tp + fp), 4),
            "f1_af": round(2 * tp / max(1, 2 * tp + fp + fn), 4),
            "not_judged_records": sum(1 for *_, n in cinc_rec if n == 0),
            "noisy_records": len(noisy),
            "noisy_called_af": sum(1 for pm, n in noisy if n > 0 and pm >= 0.5),
            "noisy_withheld": sum(1 for _, n in noisy if n == 0)}
    return {"protocol": f"{FOLDS}-fold cross-validation grouped by patient (seed {seed}); "
                        "each row is a patient never trained on by its fold's model; "
                        "fp32 Keras model, runtime windows and episode rules",
            "folds": {p: f for p, f in sorted(folds.items()) if not p.startswith("cinc")},
            "patients": rows,
            "total": {src: score_row(src, c) for src, c in totals.items()},
            "pooled": score_row("pooled", {k: sum(c.get(k, 0) for c in totals.values())
                                           for k in next(iter(totals.values()))}),
            "cinc2017": cinc, "_oof": oof}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=af_data.DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=tc.REPO / "models" / NAME)
    ap.add_argument("--cv-only", action="store_true", help="cross-validate, ship nothing")
    ap.add_argument("--oof", type=Path, default=None,
                    help="save the held-out window probabilities (.npz) for rule studies")
    args = ap.parse_args()
    t0 = time.time()
    cfg, qcfg = AfConfig(), EcgQualityConfig()
    patients, cinc_labels = load_patients(args.cache, cfg.hop_beats, cfg, qcfg)
    train_patients, _ = load_patients(args.cache, TRAIN_HOP, cfg, qcfg)
    print(f"data ready in {time.time() - t0:.0f} s: {len(patients)} patients", flush=True)
    cv = cross_validate(patients, train_patients, cinc_labels, cfg, args.seed, args.epochs)
    oof = cv.pop("_oof")
    if args.oof is not None:
        np.savez_compressed(args.oof, **{k.replace("/", "__"): v for k, v in oof.items()})
    print(json.dumps({"total": cv["total"], "pooled": cv["pooled"], "cinc": cv["cinc2017"]},
                     indent=1))
    for row in cv["patients"]:
        print(row["record"], "fold", row["fold"], "ref", row["ref_episodes"], "det",
              row["det_episodes"], "true", row["det_true"], "se", row["se"], "ppv",
              row["ppv"], "dse", row["duration_se"], "dppv", row["duration_ppv"],
              "bursts", row["bursts"], "det_s", row["det_af_s"])
    if args.cv_only:
        return

    # -- the shipped model: every patient ----------------------------------------------
    fit_model = fit(train_patients, sorted(train_patients), args.seed, args.epochs,
                    cinc_labels)
    model, mean, std, x_all = fit_model
    rng = np.random.default_rng(args.seed)
    calib = (x_all[rng.choice(len(x_all), 400, replace=False)] - mean) / std
    files = tc.export_all(model, args.out, NAME, calib)
    n_cinc = sum(1 for p in patients if p.startswith("cinc2017/"))
    manifest = {
        "name": NAME,
        "version": VERSION,
        "task": "Atrial fibrillation vs any other rhythm, from a window of 32 RR intervals",
        "input": {
            "features": F.AF_FEATURES,
            "n_features": F.AF_N_FEATURES,
            "feature_names": [f"rr_norm_{i}" for i in range(F.AF_WINDOW_RR)]
            + list(F.AF_SCALARS),
            "source": "beats (R-peak sample indices) of one ECG stream; RR intervals next to "
                      "beats labelled [af] exclude_rr_labels left out (edge.detect.af)",
            "sample_rate_hz": None,
            "min_sample_rate_hz": None,
            "window": {"rr_intervals": F.AF_WINDOW_RR, "hop_beats": cfg.hop_beats},
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
            "architecture": f"MLP {F.AF_N_FEATURES}-{HIDDEN[0]}-{HIDDEN[1]}-2, ReLU, "
                            "dropout 0.1, L2 1e-4, Adam 2e-3, classes balanced by resampling",
            "data": [
                "PhysioNet/CinC Challenge 2017 validation set (Clifford et al. 2017), ODC-BY 1.0",
                "MIT-BIH Arrhythmia Database DS1 (Moody & Mark 2001; de Chazal 2004 split), "
                "ODC-BY 1.0",
                "CPSC 2021 (Wang et al. 2021, PhysioNet), CC BY 4.0",
            ],
            "licence": "model Apache-2.0; trained on data under ODC-BY 1.0 / CC BY 4.0",
            "beats": "the runtime chain (edge.dsp.qrs QRS detector, beat_nsv beat labels, "
                     "ECG quality) replayed by tools/af_data.py",
            "patients": {"cinc2017": n_cinc, "mitdb_ds1": len(md.DS1), "cpsc2021": 3},
            "split": {"method": f"{FOLDS}-fold cross-validation grouped by patient, then "
                                "the shipped model on every patient",
                      "patients": len(patients), "folds": FOLDS},
            "windows": {"train_hop_beats": TRAIN_HOP, "rows": len(x_all),
                        "labels": "AF when >= 80 % of the window's time is (AFIB, not AF "
                                  "when <= 20 % and no more than 20 % flutter; windows on "
                                  "unusable signal and ambiguous ones left out; CinC ~ "
                                  "records not trained on"},
        },
        "metrics": {"unit": "AF episodes and AF time per patient never trained on (fold "
                            "models, fp32), through the runtime windows and episode rules",
                    "cross_validation": cv},
        "limits": [
            "Three CPSC 2021 subjects and two MIT-BIH records with AF: the AF-positive "
            "patients are few; confidence intervals are wide.",
            "Atrial flutter with regular conduction is not AF by design; flutter with "
            "variable block can be called AF.",
            "Frequent PACs / atrial bigeminy are not excluded (the beat model rarely labels "
            "S); a run of irregular PACs can be called AF.",
            "A window needs 32 RR intervals (about 25 s): many 30 s strips cannot be judged. "
            "Windows with more than 40 % of RR left out next to V beats, or on signal with "
            "SQI under 0.7, are not judged: AF during heavy ectopy or noise can be missed.",
            "Trained on the beat labels of beat_nsv 1.0.0: a retrained beat model changes "
            "which RR intervals are left out; re-run tools/af_data.py (new cache) and "
            "tools/train_af.py.",
            "Adults only; not validated on paced rhythms.",
        ],
    }
    tc.write_manifest(args.out, manifest)
    print("requantize:", requantize.requantize(NAME), flush=True)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
