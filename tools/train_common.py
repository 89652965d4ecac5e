"""Shared pieces of the training scripts: data loading, the MLP, export, manifest, metrics.

Training-only dependencies (the ``train`` extra): tensorflow-cpu (Keras, the
TFLite converter), onnx (graph building, and onnxruntime's quantizer). The
runtime never imports this module.

Export chain (see README "Models"): Keras MLP -> TFLite fp32 and full-integer
int8 with ``TFLiteConverter`` (representative dataset = training features);
the same weights -> an ONNX graph built with ``onnx.helper`` (MatMul/Add/Relu/
Softmax; tf2onnx 1.17 fails on Keras 3 models) -> ONNX int8 with
``onnxruntime.quantization.quantize_static`` (QDQ, per-channel weights,
calibration reader over training features).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def data_root() -> Path:
    from edge.trace.recordings import data_dir

    return data_dir().resolve()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import tensorflow as tf

    tf.random.set_seed(seed)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with contextlib.suppress(Exception):  # older TF has no op determinism switch
        tf.config.experimental.enable_op_determinism()


# -- data ------------------------------------------------------------------------------------

def load_cinc2017(root: Path) -> list[tuple[str, str, np.ndarray, float]]:
    """(record, label N/A/O/~, signal mV, fs) of the CinC 2017 validation set.

    The .hea first line puts the date before the time and wfdb rejects it, so
    the rate comes from that line and the samples from the .mat ``val`` array.
    """
    from scipy.io import loadmat

    d = root / "cinc2017-validation"
    out = []
    for line in (d / "REFERENCE.csv").read_text().split():
        name, label = line.strip().split(",")
        fs = float((d / f"{name}.hea").read_text().split()[2])
        val = loadmat(str(d / f"{name}.mat"))["val"].astype(np.float64).ravel() / 1000.0
        out.append((name, label, val, fs))
    return out


def rhythm_mask(rec: Any, prefix: str = "(AFIB") -> np.ndarray:
    """Per-sample flag of the rhythm whose WFDB aux note starts with ``prefix``.

    Rhythm changes are ``+`` annotations with an aux note like ``(AFIB``; any
    other rhythm note ends the flagged stretch.
    """
    n = rec.signal.shape[0]
    mask = np.zeros(n, dtype=bool)
    state, start = False, 0
    for idx, sym, aux in zip(rec.ann_index, rec.ann_symbol, rec.ann_aux, strict=True):
        if sym != "+" or not aux.startswith("("):
            continue
        if state:
            mask[start:idx] = True
        state, start = aux.startswith(prefix), int(idx)
    if state:
        mask[start:] = True
    return mask


def stratified_split(names: list[str], labels: list[str], test_frac: float,
                     seed: int) -> tuple[set[str], set[str]]:
    rng = np.random.default_rng(seed)
    train, test = set(), set()
    for lab in sorted(set(labels)):
        group = sorted(n for n, lb in zip(names, labels, strict=True) if lb == lab)
        rng.shuffle(group)
        k = int(round(test_frac * len(group)))
        test.update(group[:k])
        train.update(group[k:])
    return train, test


# -- model -----------------------------------------------------------------------------------

def train_mlp(x: np.ndarray, y: np.ndarray, hidden: tuple[int, ...], n_classes: int,
              epochs: int, seed: int, class_weight: dict[int, float] | None = None,
              dropout: float = 0.1, l2: float = 1e-4, batch_size: int = 64) -> Any:
    import keras

    seed_everything(seed)
    reg = keras.regularizers.L2(l2)
    layers: list[Any] = [keras.Input((x.shape[1],), name="x")]
    for h in hidden:
        layers.append(keras.layers.Dense(h, activation="relu", kernel_regularizer=reg))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, seed=seed))
    layers.append(keras.layers.Dense(n_classes, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
              class_weight=class_weight)
    return model


def dense_weights(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    import keras

    return [(np.asarray(layer.kernel.numpy(), np.float32), np.asarray(layer.bias.numpy(),
                                                                         np.float32))
            for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def mlp_to_onnx(weights: list[tuple[np.ndarray, np.ndarray]], path: Path, name: str) -> None:
    """The same MLP as an ONNX graph (opset 17), float32 in/out, dynamic batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = "x"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("MatMul", [cur, f"W{i}"], [f"mm{i}"]))
        nodes.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [f"z{i}"]))
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"]))
            cur = f"h{i}"
        else:
            nodes.append(helper.make_node("Softmax", [f"z{i}"], ["probs"], axis=-1))
    n_in, n_out = weights[0][0].shape[0], weights[-1][0].shape[1]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", n_out])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="vitals-edge tools/train_common.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


#: The int8 scheme of every shipped ONNX model, chosen by measurement (issue "same decisions on
#: every processor", tools/quant_study.py): uint8 activations, int8 weights per output channel
#: with a 7-bit range (reduce_range). On x86-64 without VNNI, onnxruntime's U8S8 GEMM sums
#: pairs of u8*s8 products in 16-bit registers (VPMADDUBSW) and saturates when both are large:
#: 2 * 255 * 127 > 32767; with weights in [-64, 63] the pair sum stays below 2 * 255 * 64 =
#: 32640 and cannot. Measured: the former S8S8 files gave 215 V instead of 113 on MIT-BIH 202
#: under an emulated AVX2-only CPU; reduce_range files give bit-identical outputs on AVX2,
#: AVX-512 VNNI and arm64. Sources: onnxruntime quantization guide ("when to use
#: reduce_range"); OpenVINO "Saturation (overflow) issue workaround" (7-bit weights).
ONNX_INT8_SCHEME: dict[str, Any] = {
    "format": "QDQ (onnxruntime.quantization.quantize_static)",
    "activations": "uint8, asymmetric, per tensor",
    "weights": "int8, symmetric, per output channel, reduce_range (7 bits: [-64, 63])",
    "why": "no 16-bit intermediate saturation on x86-64 AVX2 without VNNI (VPMADDUBSW); "
           "identical decisions on AVX2, AVX-512 VNNI and arm64 (measured)",
}
CALIBRATION_METHODS = ("MinMax", "Percentile")


def _batches(calib: np.ndarray, size: int = 64) -> list[dict[str, np.ndarray]]:
    n = len(calib) // size * size  # histogram calibrators need equal batches
    return [{"x": calib[i:i + size]} for i in range(0, n, size)]


def quantize_onnx(src: Path, dst: Path, calib: np.ndarray, method: str = "MinMax") -> None:
    """fp32 ONNX -> int8 QDQ ONNX with :data:`ONNX_INT8_SCHEME`, calibrated on ``calib``.

    ``calib`` holds normalised rows (what the graph takes); ``method`` is MinMax or
    Percentile (99.9 %, which clips rare outliers from the activation ranges).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterable[dict[str, np.ndarray]] = iter(_batches(calib))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)  # type: ignore[call-overload]

    extra = {"CalibPercentile": 99.9} if method == "Percentile" else {}
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, reduce_range=True,
                    calibrate_method=getattr(CalibrationMethod, method), extra_options=extra)


def clip_for_calibration(calib: np.ndarray, method: str) -> np.ndarray:
    """The TFLite converter calibrates min/max only: Percentile clips the rows beforehand."""
    if method != "Percentile":
        return calib
    lo, hi = np.percentile(calib, [0.05, 99.95])
    return np.clip(calib, lo, hi).astype(np.float32)


def keras_from_weights(weights: list[tuple[np.ndarray, np.ndarray]]) -> Any:
    """The shipped MLP rebuilt in Keras from its weights (for a TFLite export)."""
    import keras

    layers: list[Any] = [keras.Input((weights[0][0].shape[0],), name="x")]
    for i, (w, _) in enumerate(weights):
        act = "softmax" if i == len(weights) - 1 else "relu"
        layers.append(keras.layers.Dense(w.shape[1], activation=act))
    model = keras.Sequential(layers)
    for layer, (w, b) in zip([la for la in model.layers
                              if isinstance(la, keras.layers.Dense)], weights, strict=True):
        layer.set_weights([w, b])
    return model


def onnx_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(kernel, bias) per layer of an MLP written by :func:`mlp_to_onnx`."""
    import onnx
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    n = sum(1 for k in inits if k.startswith("W"))
    return [(inits[f"W{i}"].astype(np.float32), inits[f"B{i}"].astype(np.float32))
            for i in range(n)]


def to_tflite(model: Any, path: Path, calib: np.ndarray | None) -> None:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if calib is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([calib[i:i + 1]] for i in range(len(calib)))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


def export_all(model: Any, out_dir: Path, name: str, calib: np.ndarray,
               method: str = "MinMax") -> list[dict[str, Any]]:
    """fp32/int8 ONNX and fp32/int8 TFLite files; returns their manifest entries."""
    from edge.inference.manifest import file_entry

    out_dir.mkdir(parents=True, exist_ok=True)
    f32 = out_dir / f"{name}.fp32.onnx"
    i8 = out_dir / f"{name}.int8.onnx"
    t32 = out_dir / f"{name}.fp32.tflite"
    t8 = out_dir / f"{name}.int8.tflite"
    mlp_to_onnx(dense_weights(model), f32, name)
    quantize_onnx(f32, i8, calib, method)
    to_tflite(model, t32, None)
    to_tflite(model, t8, clip_for_calibration(calib, method))
    for p in (f32, i8, t32, t8):
        assert p.stat().st_size < 2_000_000, f"{p} too large to commit"
    return [file_entry(f32, "fp32"), file_entry(i8, "int8"), file_entry(t32, "fp32"),
            file_entry(t8, "int8")]


# -- golden rows -----------------------------------------------------------------------------

#: Golden rows sit at least this far from the decision boundary (probability units).
GOLDEN_MARGIN = 0.2


def golden_rows(decide: Any, margin_of: Any, x: np.ndarray, probs: np.ndarray,
                n_classes: int, n: int = 300, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` golden rows: clear of the boundary, spread over the decided classes.

    Each decided class gets an equal share (the rest filled from the others), so that
    the rare classes (V, S, AF, noisy) are checked as well as the common one.
    """
    rng = np.random.default_rng(seed)
    dec = decide(probs)
    clear = margin_of(probs) >= GOLDEN_MARGIN
    pools = [rng.permutation(np.flatnonzero(clear & (dec == k))) for k in range(n_classes)]
    share = n // n_classes
    chosen = [p[:share] for p in pools]
    rest = np.concatenate([p[share:] for p in pools])
    chosen.append(rng.permutation(rest)[:max(0, n - sum(len(c) for c in chosen))])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def write_golden(model_dir: Path, x_raw: np.ndarray, sources: list[str],
                 n: int = 300, seed: int = 0) -> dict[str, Any]:
    """``golden.npz`` of the model in ``model_dir`` (fp32 ONNX as reference); its manifest entry."""
    import platform

    from edge.inference import load_manifest, load_model
    from edge.inference.cpu import cpu_summary
    from edge.inference.golden import DEFAULT_MIN_AGREEMENT
    from edge.inference.manifest import sha256_of

    man = load_manifest(model_dir)
    ref = load_model(model_dir, backend="onnxruntime", precision="fp32")
    probs = ref.run(x_raw)
    idx = golden_rows(man.decide, man.decision_margin, x_raw, probs, len(man.classes), n, seed)
    path = model_dir / "golden.npz"
    np.savez_compressed(path, features=x_raw[idx].astype(np.float32),
                        probabilities=probs[idx].astype(np.float32),
                        decisions=man.decide(probs[idx]).astype(np.int64))
    counts = np.bincount(man.decide(probs[idx]), minlength=len(man.classes))
    return {"file": path.name, "sha256": sha256_of(path), "rows": len(idx),
            "rows_by_class": {c: int(k) for c, k in zip(man.classes, counts, strict=True)},
            "min_agreement": DEFAULT_MIN_AGREEMENT,
            "sources": sources,
            "selection": f"seeded draw (seed {seed}) from the rows of the sources, an equal "
                         f"share per fp32-decided class, only rows at least {GOLDEN_MARGIN} "
                         "from the decision boundary (fp32 probability)",
            "reference": f"onnx/fp32 with onnxruntime on {cpu_summary()['cpu']}, Python "
                         f"{platform.python_version()}"}


# -- metrics ---------------------------------------------------------------------------------

def class_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                  classes: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, c in enumerate(classes):
        tp = int(np.sum((y_pred == k) & (y_true == k)))
        fp = int(np.sum((y_pred == k) & (y_true != k)))
        fn = int(np.sum((y_pred != k) & (y_true == k)))
        se = tp / (tp + fn) if tp + fn else None
        ppv = tp / (tp + fp) if tp + fp else None
        f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None
        out[c] = {"n": int(np.sum(y_true == k)), "tp": tp, "fp": fp, "fn": fn,
                  "se": None if se is None else round(se, 4),
                  "ppv": None if ppv is None else round(ppv, 4),
                  "f1": None if f1 is None else round(f1, 4)}
    out["accuracy"] = round(float(np.mean(y_true == y_pred)), 4) if len(y_true) else None
    return out


def evaluate_files(model_dir: Path, x: np.ndarray, y: np.ndarray,
                   decide: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Metrics of every file in the manifest on held-out raw features, and agreement.

    ``decide(probs) -> class index`` applies the manifest's decision rule.
    Agreement: fraction of identical decisions and max |probability| difference
    between ONNX and TFLite of the same precision, and int8 vs fp32 per format.
    """
    from edge.inference import load_manifest, load_model

    man = load_manifest(model_dir)
    probs: dict[str, np.ndarray] = {}
    metrics: dict[str, Any] = {}
    for f in man.files:
        m = load_model(f.path)
        p = m.run(x)
        key = f"{f.format}/{f.precision}"
        probs[key] = p
        metrics[key] = class_metrics(y, decide(p), man.classes)
    agree: dict[str, Any] = {}
    pairs = [("onnx/fp32", "tflite/fp32"), ("onnx/int8", "tflite/int8"),
             ("onnx/fp32", "onnx/int8"), ("tflite/fp32", "tflite/int8")]
    for a, b in pairs:
        if a in probs and b in probs:
            agree[f"{a} vs {b}"] = {
                "decisions_equal": round(float(np.mean(decide(probs[a]) == decide(probs[b]))), 4),
                "max_abs_prob_diff": round(float(np.max(np.abs(probs[a] - probs[b]))), 4),
                "n": len(x)}
    return metrics, agree


def write_manifest(model_dir: Path, manifest: dict[str, Any]) -> None:
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def normalisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std < 1e-3, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)
