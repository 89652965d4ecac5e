"""TFLite backend: the LiteRT interpreter (``ai-edge-litert``), else ``tflite-runtime``.

Never full TensorFlow. Full-integer models take and return int8 tensors: the
float input is quantised with the input tensor's scale and zero point and the
output dequantised with the output's, so callers always see float32.

Which package exists where (measured with ``pip download --only-binary`` for
each Python / platform; see README "TFLite runtime availability"):
ai-edge-litert 2.3.0 has wheels for CPython 3.11 and 3.12 on x86-64 and
aarch64 (manylinux_2_27, so Raspberry Pi OS bookworm) and works with numpy 2;
tflite-runtime 2.14 (its last release) has only CPython <= 3.11 wheels and was
built against numpy 1.x. If neither imports, :class:`BackendUnavailableError`
says so once and ONNX models still run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError, ModelError

NAME = "litert"


def _interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError as exc:
        raise BackendUnavailableError(
            "no TFLite runtime: install ai-edge-litert (CPython 3.11/3.12, x86-64/aarch64) "
            "or tflite-runtime; ONNX models still run") from exc


def available() -> bool:
    try:
        _interpreter_class()
    except BackendUnavailableError:
        return False
    return True


def runtime_version() -> str | None:
    try:
        _, pkg = _interpreter_class()
    except BackendUnavailableError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{pkg} {version(pkg)}"
    except PackageNotFoundError:
        return pkg


def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    q = x * np.float32(1.0 / scale)
    q += np.float32(zero)
    np.rint(q, out=q)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def _dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    scale, zero = detail["quantization"]
    out = y.astype(np.float32)
    out -= np.float32(zero)
    out *= np.float32(scale)
    return out


class TfliteBackend:
    name = NAME

    def __init__(self, path: Path, threads: int = 1) -> None:
        interpreter_cls, self.package = _interpreter_class()
        try:
            self.interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError/SystemError
            hint = ("; tflite-runtime 2.14 was built for numpy 1.x, use ai-edge-litert"
                    if self.package == "tflite-runtime" and np.__version__ >= "2" else "")
            first = (str(exc).splitlines() or [""])[0][:160]
            raise ModelError(f"{path}: the TFLite interpreter ({self.package}) cannot load it "
                             f"({type(exc).__name__}: {first}){hint}") from exc
        ins = self.interpreter.get_input_details()
        if len(ins) != 1:
            raise ModelError(f"{path}: expected one input tensor, found {len(ins)}")
        self.input = ins[0]
        self.output = self.interpreter.get_output_details()[0]
        self.n_features: int | None = int(self.input["shape"][-1])
        self.fixed_batch: int | None = None
        self._batch = int(self.input["shape"][0])

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"],
                                                [batch, int(self.n_features or 0)])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self._batch = batch

    def run(self, x: np.ndarray) -> np.ndarray:
        self._resize(x.shape[0])
        self.interpreter.set_tensor(self.input["index"], _quantize(x, self.input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)

    def bare_call(self, x: np.ndarray) -> Any:
        """The bare runtime call (``invoke`` on pre-quantised input), for benchmarks."""
        self._resize(x.shape[0])
        it, idx, q = self.interpreter, self.input["index"], _quantize(x, self.input)

        def call() -> None:
            it.set_tensor(idx, q)
            it.invoke()

        return call
