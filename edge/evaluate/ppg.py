"""PPG heart-rate accuracy on IEEE Signal Processing Cup 2015 recordings.

Data: Zhang Z, Pi Z, Liu B, *TROIKA*, IEEE TBME 2015;62(2):522-531 (the SPC
2015 training set): ``.mat`` key ``sig`` with rows ECG, PPG1, PPG2, ACC x, y,
z at 125 Hz (the ECG row may be absent: 5 rows), and the reference heart rate
(from the chest ECG) of each 8 s window with a 2 s step, in
``DATA_xx_TYPEyy_BPMtrace.mat`` or ``BPM_<name>.mat`` (key ``BPM0``).

The estimate of window ``i`` is compared with reference ``i``; the figure is
the mean absolute error (bpm) per recording, and over recordings (the mean of
the per-recording MAEs, as the SPC papers report it; ``mae_bpm_windows`` is the
MAE over all windows pooled).

``loo_cross_validate`` tunes parameters on all recordings but one and measures
the held-out one, for each recording in turn (leave-one-recording-out), so the
tuned and the cross-validated figures can both be reported honestly.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.config import PpgConfig
from edge.dsp.ppg import ppg_hr_motion
from edge.errors import RecordFormatError
from edge.evaluate.progress import OnRecord, each

SPC_FS = 125.0


def load_spc(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(ppg (2, n), acc (3, n)) of an SPC 2015 ``.mat`` file, with or without the ECG row."""
    from scipy.io import loadmat

    try:
        sig = np.asarray(loadmat(str(path))["sig"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise RecordFormatError(f"{path}: not an SPC 2015 .mat file with 'sig' ({exc})") from exc
    if sig.shape[0] not in (5, 6):
        raise RecordFormatError(f"{path}: 'sig' has {sig.shape[0]} rows, expected 6 "
                                "(ECG, PPG1, PPG2, ACC x y z) or 5 (without ECG)")
    return sig[-5:-3], sig[-3:]


def reference_path(path: str | Path) -> Path:
    """The reference BPM file next to a recording (``*_BPMtrace.mat`` or ``BPM_*.mat``)."""
    p = Path(path)
    for cand in (p.with_name(p.stem + "_BPMtrace.mat"),
                 p.with_name(p.name.replace("DATA_", "BPM_", 1))):
        if cand.exists() and cand != p:
            return cand
    raise RecordFormatError(f"{p}: no reference BPM file next to it "
                            f"({p.stem}_BPMtrace.mat or {p.name.replace('DATA_', 'BPM_', 1)})")


def load_reference(path: str | Path) -> np.ndarray:
    from scipy.io import loadmat

    m = loadmat(str(path))
    if "BPM0" not in m:
        raise RecordFormatError(f"{path}: no 'BPM0' array")
    return np.asarray(m["BPM0"], dtype=np.float64).ravel()


def estimate_record(path: str | Path, config: PpgConfig | None = None) -> np.ndarray:
    ppg, acc = load_spc(path)
    return np.array([e.bpm for e in ppg_hr_motion(ppg, acc, SPC_FS, config)])


def _errors(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    n = min(est.size, ref.size)
    return np.abs(est[:n] - ref[:n])


def evaluate_ppg_hr(paths: Sequence[str | Path], reference: str | Path | None = None,
                    config: PpgConfig | None = None,
                    on_record: OnRecord | None = None) -> dict[str, Any]:
    """Per-recording and overall MAE (bpm) of the motion-robust PPG heart rate.

    ``reference`` names the BPM file when a single recording is given; by
    default each recording's reference is found next to it.
    """
    if reference is not None and len(paths) != 1:
        raise ValueError("an explicit reference needs exactly one recording")
    rows = []
    pooled = []
    for p in each(paths, on_record):
        ref = load_reference(reference if reference is not None else reference_path(p))
        err = _errors(estimate_record(p, config), ref)
        pooled.append(err)
        rows.append({"record": Path(p).stem, "windows": int(err.size),
                     "mae_bpm": round(float(err.mean()), 3),
                     "within_5_bpm": round(float((err <= 5).mean()), 3)})
    allerr = np.concatenate(pooled) if pooled else np.zeros(0)
    total = {"records": len(rows),
             "mae_bpm": round(float(np.mean([r["mae_bpm"] for r in rows])), 3) if rows else None,
             "mae_bpm_windows": round(float(allerr.mean()), 3) if allerr.size else None,
             "within_5_bpm": round(float((allerr <= 5).mean()), 3) if allerr.size else None}
    return {"task": "ppg-hr", "records": rows, "total": total}


#: The grid searched by ``loo_cross_validate`` (PpgConfig field -> values).
DEFAULT_GRID: dict[str, tuple[Any, ...]] = {
    "wiener_weight": (3.0, 10.0, 30.0),
    "motion_acc_std": (0.05, 0.1),
    "transition_cost": (0.5, 1.0, 3.0),
    "max_step_bpm": (4.0, 6.0),
    "emission_floor": (0.02, 0.05, 0.1),
}


def loo_cross_validate(paths: Sequence[str | Path], grid: dict[str, Iterable[Any]] | None = None,
                       base: PpgConfig | None = None) -> dict[str, Any]:
    """Leave-one-recording-out: for each recording, the grid point best on the others."""
    grid = {k: tuple(v) for k, v in (grid or DEFAULT_GRID).items()}
    base = base or PpgConfig()
    refs = [load_reference(reference_path(p)) for p in paths]
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    maes = np.empty((len(points), len(paths)))
    for i, point in enumerate(points):
        cfg = dataclasses.replace(base, **point)
        for j, p in enumerate(paths):
            maes[i, j] = _errors(estimate_record(p, cfg), refs[j]).mean()
    tuned = int(maes.mean(axis=1).argmin())
    held_out = []
    for j, p in enumerate(paths):
        others = np.delete(maes, j, axis=1).mean(axis=1)
        k = int(others.argmin())
        held_out.append({"record": Path(p).stem, "mae_bpm": round(float(maes[k, j]), 3),
                         "chosen": points[k]})
    return {"grid_points": len(points),
            "tuned": {"params": points[tuned], "mae_bpm": round(float(maes[tuned].mean()), 3),
                      "per_record": [round(float(x), 3) for x in maes[tuned]]},
            "loo": {"mae_bpm": round(float(np.mean([r["mae_bpm"] for r in held_out])), 3),
                    "per_record": held_out}}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--reference")
    ap.add_argument("--loo", action="store_true", help="leave-one-recording-out tuning")
    args = ap.parse_args(argv)
    if args.loo:
        print(json.dumps(loo_cross_validate(args.paths), indent=1))
    else:
        print(json.dumps(evaluate_ppg_hr(args.paths, args.reference), indent=1))


if __name__ == "__main__":
    main()
