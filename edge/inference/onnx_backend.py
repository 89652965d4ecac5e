"""onnxruntime backend: one InferenceSession per model file, one thread by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError, ModelError

NAME = "onnxruntime"


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def runtime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


class OnnxBackend:
    """Runs a float32-in / float32-out ONNX graph (int8 QDQ models included)."""

    name = NAME

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed: "
                                          "pip install onnxruntime") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ort raises its own Fail/InvalidProtobuf types
            raise ModelError(f"{path}: onnxruntime cannot load it "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
                             ) from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one input tensor, found {len(inputs)}")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        shape = inputs[0].shape
        self.n_features = shape[-1] if isinstance(shape[-1], int) else None
        self.fixed_batch: int | None = shape[0] if isinstance(shape[0], int) else None

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: x})
        return np.asarray(out[0], dtype=np.float32)

    def bare_call(self, x: np.ndarray) -> Any:
        """The bare runtime call (``session.run``) on prepared input, for benchmarks."""
        session, out, name = self.session, [self.output_name], self.input_name
        return lambda: session.run(out, {name: x})
