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


def rhythm_mask(rec: Any) -> np.ndarray:
    """Per-sample AF flag from WFDB rhythm annotations (``(AFIB``; other rhythms end it)."""
    n = rec.signal.shape[0]
    mask = np.zeros(n, dtype=bool)
    state, start = False, 0
    for idx, sym, aux in zip(rec.ann_index, rec.ann_symbol, rec.ann_aux, strict=True):
        if sym != "+" or not aux.startswith("("):
            continue
        is_af = aux.startswith("(AFIB")
        if state:
            mask[start:idx] = True
        state, start = is_af, int(idx)
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
              dropout: float = 0.1, l2: float = 1e-4) -> Any:
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
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, shuffle=True,
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


def quantize_onnx(src: Path, dst: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterable[dict[str, np.ndarray]] = iter(
                [{"x": calib[i:i + 32]} for i in range(0, len(calib), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)  # type: ignore[call-overload]

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True)


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


def export_all(model: Any, out_dir: Path, name: str, calib: np.ndarray) -> list[dict[str, Any]]:
    """fp32/int8 ONNX and fp32/int8 TFLite files; returns their manifest entries."""
    from edge.inference.manifest import file_entry

    out_dir.mkdir(parents=True, exist_ok=True)
    f32 = out_dir / f"{name}.fp32.onnx"
    i8 = out_dir / f"{name}.int8.onnx"
    t32 = out_dir / f"{name}.fp32.tflite"
    t8 = out_dir / f"{name}.int8.tflite"
    mlp_to_onnx(dense_weights(model), f32, name)
    quantize_onnx(f32, i8, calib)
    to_tflite(model, t32, None)
    to_tflite(model, t8, calib)
    for p in (f32, i8, t32, t8):
        assert p.stat().st_size < 2_000_000, f"{p} too large to commit"
    return [file_entry(f32, "fp32"), file_entry(i8, "int8"), file_entry(t32, "fp32"),
            file_entry(t8, "int8")]


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
