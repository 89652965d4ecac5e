"""Re-make the int8 files and the golden rows of the shipped models from their fp32 weights.

    pip install -e ".[train]" && python tools/requantize.py [beat_nsv af_rr ecg_quality]

For each model: the fp32 ONNX weights are read back; the int8 ONNX file is made
with the project's scheme (``train_common.ONNX_INT8_SCHEME``) and the int8 TFLite
file with TFLiteConverter (full integer), both calibrated on the model's own
training-distribution rows outside MIT-BIH DS2; the calibration method (MinMax or
Percentile 99.9) is picked by agreement with fp32 on real rows; ``golden.npz`` is
drawn; the manifest gets the new sha256s, a ``quantization`` section saying what
was done and why, and its ``golden`` entry. The fp32 files are not touched.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_data as md  # noqa: E402
import train_common as tc  # noqa: E402

from edge.inference import features as F  # noqa: E402
from edge.inference import load_manifest  # noqa: E402
from edge.inference.manifest import file_entry  # noqa: E402

CPSC = [f"cpsc2021/{p.stem}" for p in sorted((md.data_dir() / "cpsc2021").glob("*.hea"))]

#: Rows each model is calibrated on: its training distribution, without any DS2 record.
CALIBRATION = {
    "beat_nsv": md.CALIBRATION_RECORDS[F.BEAT_FEATURES],
    "af_rr": md.CALIBRATION_RECORDS[F.AF_FEATURES],
    "ecg_quality": md.CALIBRATION_RECORDS[F.QUALITY_FEATURES],
}
#: Rows the golden set is drawn from (no DS2 record).
GOLDEN = {
    "beat_nsv": md.CALIBRATION_RECORDS[F.BEAT_FEATURES],
    "af_rr": md.CALIBRATION_RECORDS[F.AF_FEATURES],
    "ecg_quality": md.CALIBRATION_RECORDS[F.QUALITY_FEATURES],
}


def _onnx_probs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0], np.float32)


def requantize(name: str, max_calib: int = 8000,
               model_dir: Path | None = None) -> dict[str, Any]:
    model_dir = model_dir or tc.REPO / "models" / name
    man = load_manifest(model_dir)
    for recs in (CALIBRATION[name], GOLDEN[name]):
        assert not any(md.is_ds2(r) for r in recs), "a DS2 record in calibration or golden rows"
    f32 = man.file("fp32", "onnx").path
    cal_raw, _ = md.rows_for(man.spec.features, CALIBRATION[name])
    if len(cal_raw) > max_calib:
        keep = np.random.default_rng(0).choice(len(cal_raw), max_calib, replace=False)
        cal_raw = cal_raw[np.sort(keep)]
    calib = man.spec.normalise(cal_raw)
    pool_raw, _ = md.rows_for(man.spec.features, GOLDEN[name])
    pool = man.spec.normalise(pool_raw)
    ref = man.decide(_onnx_probs(f32, pool))
    measured: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in tc.CALIBRATION_METHODS:
            out = Path(tmp) / f"{method}.onnx"
            tc.quantize_onnx(f32, out, calib, method)
            measured[method] = float(np.mean(man.decide(_onnx_probs(out, pool)) == ref))
    method = max(tc.CALIBRATION_METHODS, key=lambda m: measured[m])
    i8 = model_dir / f"{name}.int8.onnx"
    t8 = model_dir / f"{name}.int8.tflite"
    tc.quantize_onnx(f32, i8, calib, method)
    keras_model = tc.keras_from_weights(tc.onnx_weights(f32))
    tc.to_tflite(keras_model, t8, tc.clip_for_calibration(calib, method))
    raw = dict(man.raw)
    raw["files"] = [file_entry(f.path, "fp32") for f in man.files if f.precision == "fp32"] \
        + [file_entry(i8, "int8"), file_entry(t8, "int8")]
    raw["quantization"] = {
        "onnx_int8": {**tc.ONNX_INT8_SCHEME, "calibration": {
            "method": method + (" 99.9 %" if method == "Percentile" else ""),
            "rows": len(calib), "records": CALIBRATION[name],
            "chosen_by": "decision agreement with fp32 on the golden source rows "
                         f"({len(pool)} rows): " + ", ".join(
                             f"{m} {v:.4f}" for m, v in measured.items())}},
        "tflite_int8": {"format": "full-integer int8 (TFLiteConverter, int8 input and "
                                  "output, per-channel int8 weights, int32 accumulation)",
                        "calibration": f"the same rows ({method}: rows clipped to their "
                                       "0.05-99.95 % range first when Percentile)",
                        "why": "integer kernels accumulate in 32 bits on every CPU: identical "
                               "outputs on AVX2, AVX-512 VNNI and arm64 (measured)"},
        "tool": "tools/requantize.py",
    }
    tc.write_manifest(model_dir, raw)
    raw["golden"] = tc.write_golden(model_dir, pool_raw, GOLDEN[name])
    _drop_stale_int8_figures(raw)
    tc.write_manifest(model_dir, raw)
    raw["quantization"]["int8_vs_fp32"] = int8_agreement(model_dir, pool_raw)
    raw["default_precision"] = "int8"
    failed = {k: v for k, v in raw["quantization"]["int8_vs_fp32"].items()
              if not v["golden"]["ok"]}
    if failed:
        # int8 that cannot match is not shipped: fp32 is the model's only precision
        raw["default_precision"] = "fp32"
        raw["quantization"]["int8_not_shipped"] = (
            "the int8 files decided differently from fp32 on the golden rows ("
            + "; ".join(f"{k}: {v['golden']['agreement']:.4f}" for k, v in failed.items())
            + f", needs {raw['golden']['min_agreement']}): fp32 is shipped alone")
        i8.unlink()
        t8.unlink()
        raw["files"] = [e for e in raw["files"] if e["precision"] != "int8"]
    tc.write_manifest(model_dir, raw)
    return {"model": name, "method": method, "measured": measured,
            "golden": raw["golden"]["rows_by_class"],
            "default_precision": raw["default_precision"],
            "int8_vs_fp32": raw["quantization"]["int8_vs_fp32"]}


def int8_agreement(model_dir: Path, pool_raw: np.ndarray) -> dict[str, Any]:
    """Each int8 file vs fp32 on this machine: golden rows, and every row of the pool."""
    from edge.inference import load_model
    from edge.inference.cpu import cpu_summary
    from edge.inference.golden import check_model

    man = load_manifest(model_dir)
    out: dict[str, Any] = {}
    for fmt in ("onnx", "tflite"):
        f32 = load_model(model_dir, backend=fmt, precision="fp32")
        i8 = load_model(model_dir, backend=fmt, precision="int8")
        p32, p8 = f32.run(pool_raw), i8.run(pool_raw)
        d32, d8 = man.decide(p32), man.decide(p8)
        golden = check_model(i8)
        assert golden is not None
        out[f"{fmt}/int8"] = {
            "cpu": cpu_summary()["cpu"],
            "golden": golden.to_dict(),
            "all_rows": {"rows": len(pool_raw),
                         "agreement": round(float(np.mean(d32 == d8)), 4),
                         "by_fp32_class": {c: {"n": int(np.sum(d32 == k)),
                                               "changed": int(np.sum((d32 == k) & (d8 != k)))}
                                           for k, c in enumerate(man.classes)}}}
    return out


def _drop_stale_int8_figures(raw: dict[str, Any]) -> None:
    """Held-out figures of the former int8 files no longer describe the files shipped."""
    note = ("int8 files re-made by tools/requantize.py; their held-out figures are "
            "replaced by their agreement with fp32 (quantization, golden, cross_cpu)")
    for section in ("metrics", "agreement"):
        for v in (raw.get(section) or {}).values():
            if not isinstance(v, dict):
                continue
            table = v.get("by_file", v)
            for key in [k for k in table if "int8" in k]:
                del table[key]
    raw.setdefault("notes", [])
    if note not in raw["notes"]:
        raw["notes"].append(note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=["beat_nsv", "af_rr", "ecg_quality"])
    a = ap.parse_args()
    for name in a.models:
        t0 = time.time()
        print(requantize(name), f"{time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
