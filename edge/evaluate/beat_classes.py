"""Beat classification quality per AAMI EC57 class, beat by beat, through the live pipeline.

ANSI/AAMI EC57 style (``bxb``-like), whole records, gross totals:

* Detections are matched one-to-one to the reference beats within 150 ms
  (:func:`~edge.evaluate.beats.match_pairs`); ``qrs`` is the detection result.
* Reference classes from the ``atr`` symbols: N (N L R e j), S = SVEB (A a J
  S), V = VEB (V E), F (F), Q (/ f Q and the other beat codes); detected
  classes are the pipeline's ``Beat.label`` (N S V F, Q = unclassified or
  paced).
* Per class C: TP = matched beats of reference class C labelled C; FN =
  reference C beats labelled otherwise or not detected; FP = beats labelled C
  whose reference is another class, or no beat at all (a false detection).
  As in EC57, reference Q beats are left out of the class FP counts (a paced
  or unclassifiable beat has no class to be wrong about).
* ``confusion``: reference class (rows N S V F Q, then ``-`` = false
  detection) x detected class (columns N S V F Q, then ``-`` = missed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import EdgeConfig
from edge.detect.models import ModelSet
from edge.errors import RecordFormatError
from edge.evaluate.af import replay_with_models
from edge.evaluate.beats import AAMI_BEAT_SYMBOLS, BeatMatch, match_pairs
from edge.trace.recordings import load_wfdb

__all__ = ["CLASSES", "LABELS", "aami_class", "evaluate_beat_classes", "score_labels"]

#: Classes scored (EC57: N, SVEB, VEB, F).
CLASSES = ("N", "S", "V", "F")
#: Rows / columns of the confusion matrix.
LABELS = ("N", "S", "V", "F", "Q")
_AAMI = {**dict.fromkeys("NLRej", "N"), **dict.fromkeys("AaJS", "S"),
         **dict.fromkeys("VE", "V"), "F": "F"}


def aami_class(symbol: str) -> str:
    """AAMI EC57 class of a WFDB beat symbol (Q for paced, unclassifiable and others)."""
    return _AAMI.get(symbol, "Q")


def _stats(m: BeatMatch) -> dict[str, Any]:
    return {"se": round(m.se, 6), "ppv": round(m.ppv, 6), "tp": m.tp, "fp": m.fp, "fn": m.fn}


def score_labels(ref_index: np.ndarray, ref_class: list[str], det_index: np.ndarray,
                 det_label: list[str], fs: float, tolerance_s: float = 0.150,
                 ) -> tuple[dict[str, BeatMatch], np.ndarray]:
    """EC57 per-class counts (``qrs`` and each of :data:`CLASSES`) and the confusion matrix."""
    ref_index = np.asarray(ref_index, dtype=np.int64)
    det_index = np.asarray(det_index, dtype=np.int64)
    pr, pd = match_pairs(ref_index, det_index, fs, tolerance_s)
    n = len(LABELS)
    conf = np.zeros((n + 1, n + 1), dtype=np.int64)
    col = {c: k for k, c in enumerate(LABELS)}
    det_lab = [lab if lab in col else "Q" for lab in det_label]
    matched_ref = np.zeros(len(ref_index), dtype=bool)
    matched_det = np.zeros(len(det_index), dtype=bool)
    matched_ref[pr] = True
    matched_det[pd] = True
    for i, j in zip(pr.tolist(), pd.tolist(), strict=True):
        conf[col[ref_class[i]], col[det_lab[j]]] += 1
    for i in np.flatnonzero(~matched_ref).tolist():
        conf[col[ref_class[i]], n] += 1
    for j in np.flatnonzero(~matched_det).tolist():
        conf[n, col[det_lab[j]]] += 1
    out = {"qrs": BeatMatch(int(pr.size), int(len(det_index) - pr.size),
                            int(len(ref_index) - pr.size))}
    q = col["Q"]
    for c in CLASSES:
        k = col[c]
        tp = int(conf[k, k])
        fn = int(conf[k, :].sum() - tp)
        # labelled c: every reference row except c itself and Q, plus false detections
        fp = int(sum(conf[r, k] for r in range(n + 1) if r not in (k, q)))
        out[c] = BeatMatch(tp, fp, fn)
    return out, conf


def _record_json(name: str, counts: dict[str, BeatMatch], conf: np.ndarray,
                 **extra: Any) -> dict[str, Any]:
    return {"record": name, **{k: _stats(v) for k, v in counts.items()},
            "confusion": conf.tolist(), **extra}


def beats_record(path: str | Path, config: EdgeConfig, models: ModelSet,
                 channel: str | None = None, tolerance_s: float = 0.150,
                 ) -> tuple[dict[str, BeatMatch], np.ndarray, dict[str, Any]]:
    rec = load_wfdb(path, channel=channel, annotator="atr")
    if not rec.ann_index.size:
        raise RecordFormatError(f"{path}: no 'atr' annotations to compare against")
    keep = [k for k, s in enumerate(rec.ann_symbol) if s in AAMI_BEAT_SYMBOLS]
    ref_index = np.asarray(rec.ann_index, dtype=np.int64)[keep]
    ref_class = [aami_class(rec.ann_symbol[k]) for k in keep]
    beats, _ = asyncio.run(replay_with_models(rec, config, models))
    det_index = np.array([b.index for b in beats], dtype=np.int64)
    counts, conf = score_labels(ref_index, ref_class, det_index, [b.label for b in beats],
                                rec.fs, tolerance_s)
    return counts, conf, _record_json(rec.name, counts, conf, fs=rec.fs,
                                      minutes=round(rec.duration_s / 60, 2))


def evaluate_beat_classes(paths: list[str], config: EdgeConfig, channel: str | None = None,
                          tolerance_s: float = 0.150, models: ModelSet | None = None,
                          plot_dir: str | Path | None = None) -> dict[str, Any]:
    """Per-record and gross EC57 figures for QRS and each class, with confusion matrices."""
    models = models or ModelSet.from_config(config)
    if models.beat is None:
        raise RecordFormatError("beat evaluation needs a beat model "
                                "(inference.beat_model is empty)")
    rows = []
    total: dict[str, BeatMatch] = {}
    conf_total = np.zeros((len(LABELS) + 1, len(LABELS) + 1), dtype=np.int64)
    for p in paths:
        counts, conf, row = beats_record(p, config, models, channel, tolerance_s)
        rows.append(row)
        for k, v in counts.items():
            total[k] = total.get(k, BeatMatch(0, 0, 0)) + v
        conf_total += conf
    axes = {"rows_reference": [*LABELS, "-"], "columns_detected": [*LABELS, "-"],
            "note": "row '-' = detections matching no reference beat; column '-' = reference "
                    "beats not detected"}
    model = models.beat.model
    result = {"task": "beats", "tolerance_s": tolerance_s, "model": model.name,
              "model_version": model.version, "backend": model.backend_name,
              "precision": model.precision,
              "gross": {k: _stats(v) for k, v in total.items()},
              "confusion": {**axes, "counts": conf_total.tolist()},
              "records": rows}
    if plot_dir is not None:
        from edge.evaluate.plots import plot_confusion

        plot_confusion(conf_total, [*LABELS, "-"], Path(plot_dir) / "beats-confusion.png",
                       title=f"{model.name} {model.version}: reference x detected, "
                             f"{len(paths)} record(s)")
    return result
