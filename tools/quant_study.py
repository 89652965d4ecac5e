"""Which int8 scheme decides as fp32 does on every CPU? Build candidates, then compare.

    python tools/quant_study.py build OUT            # candidates + real inputs (native)
    python tools/quant_study.py eval OUT --tag native
    qemu-x86_64-static -cpu max .venv/bin/python tools/quant_study.py eval OUT --tag avx2
    python tools/quant_study.py report OUT           # agreement with native fp32, per CPU

Candidates are quantized from each shipped model's fp32 ONNX file with
onnxruntime's static QDQ quantizer, calibrated on rows from non-DS2 records
(``tools/model_data.py``). Inputs for the comparison are the issue's records:
MIT-BIH 202 (DS2: compared, never calibrated on) and 208 for the beat model,
CPSC 2021 and MIT-BIH DS1 201/203 for AF, CinC 2017 for quality.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_data as md  # noqa: E402

from edge.inference import load_manifest  # noqa: E402

MODELS = ("beat_nsv", "af_rr", "ecg_quality")
EVAL_RECORDS = {
    "beat_nsv": ["mitdb-signal-only/202", "mitdb-ds1/208"],
    "af_rr": ["cpsc2021/data_101_6", "cpsc2021/data_101_8", "cpsc2021/data_84_1",
              "cpsc2021/data_21_7", "mitdb-ds1/201", "mitdb-ds1/203"],
    "ecg_quality": ["cinc2017-validation"],
}
SCHEMES = {
    # name: (activation type, weight type, per_channel, reduce_range, calibration, extra options)
    "s8s8": ("QInt8", "QInt8", True, False, "MinMax", {}),
    "s8s8_rr": ("QInt8", "QInt8", True, True, "MinMax", {}),
    "u8s8_rr": ("QUInt8", "QInt8", True, True, "MinMax", {}),
    "u8u8": ("QUInt8", "QUInt8", True, False, "MinMax", {}),
    "s8s8_rr_sym": ("QInt8", "QInt8", True, True, "MinMax", {"ActivationSymmetric": True}),
    "u8s8_rr_p9999": ("QUInt8", "QInt8", True, True, "Percentile", {"CalibPercentile": 99.99}),
    "u8s8_rr_p999": ("QUInt8", "QInt8", True, True, "Percentile", {"CalibPercentile": 99.9}),
    "u8u8_p9999": ("QUInt8", "QUInt8", True, False, "Percentile", {"CalibPercentile": 99.99}),
    "s8s8_rr_p9999": ("QInt8", "QInt8", True, True, "Percentile", {"CalibPercentile": 99.99}),
    "u8s8_rr_ent": ("QUInt8", "QInt8", True, True, "Entropy", {}),
    "u8s8_rr_l0fp32": ("QUInt8", "QInt8", True, True, "MinMax", {"exclude": ["mm0", "add0"]}),
    "u8s8_rr_l0fp32_p9999": ("QUInt8", "QInt8", True, True, "Percentile",
                             {"CalibPercentile": 99.99, "exclude": ["mm0", "add0"]}),
}


def quantize(src: Path, dst: Path, calib: np.ndarray, scheme: str) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    act, wt, pc, rr, method, extra = SCHEMES[scheme]
    extra = dict(extra)
    exclude = extra.pop("exclude", [])
    model = onnx.load(str(src))
    for node in model.graph.node:  # name the nodes so that layers can be excluded
        if not node.name:
            prefix = {"MatMul": "mm", "Add": "add", "Relu": "relu"}.get(node.op_type, "op")
            node.name = prefix + node.output[0][-1]
    named = dst.with_suffix(".named.onnx")
    onnx.save(model, str(named))
    src = named

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            n = len(calib) // 64 * 64  # histogram calibrators need equal batches
            self._it = iter([{"x": calib[i:i + 64]} for i in range(0, n, 64)])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self._it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=getattr(QuantType, act), weight_type=getattr(QuantType, wt),
                    per_channel=pc, reduce_range=rr, extra_options=extra,
                    calibrate_method=getattr(CalibrationMethod, method),
                    nodes_to_exclude=exclude)


def build(out: Path) -> None:
    for name in MODELS:
        man = load_manifest(md.REPO / "models" / name)
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        if name == "beat_nsv" and os.environ.get("CALIB") == "train":
            cx, _ = md.rows_for(man.spec.features, ["mitdb-ds1/208"] + [
                f"cpsc2021/{p.stem}" for p in sorted((md.data_dir() / "cpsc2021").glob("*.hea"))])
            calib = man.spec.normalise(cx)
        else:
            calib = man.spec.normalise(md.calibration_rows(man.spec.features, 8000))
        for scheme in SCHEMES:
            quantize(man.file("fp32", "onnx").path, d / f"{scheme}.onnx", calib, scheme)
        x, where = md.rows_for(man.spec.features, EVAL_RECORDS[name])
        np.savez(d / "eval.npz", x=man.spec.normalise(x), where=np.array(where))
        print(name, "calibration", calib.shape, "eval", x.shape)


def _onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {s.get_inputs()[0].name: x})[0], np.float32)


def _tflite(path: Path, x: np.ndarray) -> np.ndarray:
    from edge.inference.tflite_backend import TfliteBackend

    return TfliteBackend(path, 1).run(x)


def evaluate(out: Path, tag: str) -> None:
    res = {}
    for name in MODELS:
        man = load_manifest(md.REPO / "models" / name)
        d = out / name
        x = np.load(d / "eval.npz")["x"]
        probs = {"fp32.onnx": _onnx(man.file("fp32", "onnx").path, x),
                 "shipped.int8.onnx": _onnx(man.file("int8", "onnx").path, x),
                 "fp32.tflite": _tflite(man.file("fp32", "tflite").path, x),
                 "shipped.int8.tflite": _tflite(man.file("int8", "tflite").path, x)}
        for scheme in SCHEMES:
            probs[f"{scheme}.onnx"] = _onnx(d / f"{scheme}.onnx", x)
        np.savez(d / f"probs-{tag}.npz", **probs)
        res[name] = list(probs)
    print(json.dumps(res))


def decide(name: str, p: np.ndarray) -> np.ndarray:
    if name == "af_rr":
        return (p[:, 1] >= 0.5).astype(int)
    return np.argmax(p, axis=1)


def report(out: Path) -> None:
    for name in MODELS:
        d = out / name
        where = np.load(d / "eval.npz")["where"]
        ref = dict(np.load(d / "probs-native.npz"))
        ref_dec = decide(name, ref["fp32.onnx"])
        for f in sorted(d.glob("probs-*.npz")):
            tag = f.stem.split("-", 1)[1]
            probs = dict(np.load(f))
            for k, p in probs.items():
                dec = decide(name, p)
                line = [f"{name:11} {tag:7} {k:20} agree {np.mean(dec == ref_dec):.4f} "
                        f"maxdiff {np.max(np.abs(p - ref['fp32.onnx'])):.3f}"]
                if name == "beat_nsv":
                    for rec in EVAL_RECORDS[name]:
                        m = where == rec
                        line.append(f"{rec.split('/')[-1]}: V {int(np.sum(dec[m] == 2))}"
                                    f"/{int(np.sum(ref_dec[m] == 2))} "
                                    f"agree {np.mean(dec[m] == ref_dec[m]):.4f}")
                print("  ".join(line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("build", "eval", "report"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--tag", default="native")
    a = ap.parse_args()
    {"build": lambda: build(a.out), "eval": lambda: evaluate(a.out, a.tag),
     "report": lambda: report(a.out)}[a.action]()


if __name__ == "__main__":
    main()
