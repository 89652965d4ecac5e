"""One small inference API over two runtimes (onnxruntime and the TFLite interpreter).

    from edge.inference import load_model
    model = load_model("models/af_rr")                 # manifest dir: ONNX, its default precision
    model = load_model("models/af_rr/af_rr.int8.tflite")  # backend from the file
    probs = model.run(features)                        # (batch, n_features) -> (batch, classes)
    probs = await model.run_async(features)            # off the event loop

The backend is chosen from the file (``.onnx`` -> onnxruntime, ``.tflite`` ->
LiteRT); a manifest is always checked first (sha256 of the file, input spec
known to this runtime, model input width) and a mismatch refuses the model
with one :class:`~edge.errors.ModelError` line. Threads default to 1: a
Raspberry Pi core is shared with acquisition and sync.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.errors import ModelError, ModelSpecError
from edge.inference.manifest import (
    MANIFEST_NAME,
    InputSpec,
    Manifest,
    ModelFile,
    find_manifest_for,
    load_manifest,
    verify_sha256,
)
from edge.stats import LatencyHistogram

__all__ = ["InputSpec", "Manifest", "Model", "ModelHandle", "available_backends",
           "default_models_dir", "list_models", "load_model"]

log = logging.getLogger(__name__)


class Backend(Protocol):
    name: str
    n_features: int | None

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def bare_call(self, x: np.ndarray) -> Any: ...


def default_models_dir() -> Path:
    """``EDGE_MODELS_DIR``, else ``models/`` of the checkout this package runs from."""
    env = os.environ.get("EDGE_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models"


def available_backends() -> dict[str, str | None]:
    """Backend name -> runtime version (None where it is not installed)."""
    from edge.inference import onnx_backend, tflite_backend

    return {onnx_backend.NAME: onnx_backend.runtime_version(),
            tflite_backend.NAME: tflite_backend.runtime_version()}


def _open_backend(f: ModelFile, threads: int) -> Backend:
    if f.format == "onnx":
        from edge.inference.onnx_backend import OnnxBackend

        return OnnxBackend(f.path, threads)
    from edge.inference.tflite_backend import TfliteBackend

    return TfliteBackend(f.path, threads)


class Model:
    """A loaded, verified, warmed-up model file and its manifest."""

    def __init__(self, manifest: Manifest, file: ModelFile, threads: int = 1) -> None:
        self.manifest = manifest
        self.file = file
        self.threads = threads
        verify_sha256(file, manifest.name)
        self.backend = _open_backend(file, threads)
        width = self.backend.n_features
        if width is not None and width != manifest.spec.n_features:
            raise ModelSpecError(f"model {manifest.name}: {file.path.name} takes {width} inputs "
                                 f"but its input spec says {manifest.spec.n_features}")
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.latency = LatencyHistogram()  # per-call inference time, for metrics
        self.warm_up()

    # -- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def precision(self) -> str:
        return self.file.precision

    @property
    def format(self) -> str:
        return self.file.format

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def spec(self) -> InputSpec:
        return self.manifest.spec

    @property
    def classes(self) -> tuple[str, ...]:
        return self.manifest.classes

    def __repr__(self) -> str:
        return (f"Model({self.name} {self.version}, {self.format}/{self.precision}, "
                f"{self.backend_name}, threads={self.threads})")

    # -- running -------------------------------------------------------------------------
    def warm_up(self) -> None:
        """One call on a neutral input: allocations and kernel selection happen now."""
        self.run(np.asarray(self.spec.mean, dtype=np.float32)[None, :])

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Features -> the normalised float32 batch the graph takes."""
        return self.spec.normalise(features)

    def run(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (batch, n_classes) for raw feature rows (batch, n_features)."""
        x = self.prepare(features)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        t0 = time.perf_counter()
        with self._lock:  # interpreters are not re-entrant
            out = self.backend.run(x)
        self.latency.observe(time.perf_counter() - t0)
        return out

    async def run_async(self, features: np.ndarray) -> np.ndarray:
        """:meth:`run` on this model's single worker thread, off the event loop."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"model-{self.name}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, features)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _resolve(path: Path, precision: str, fmt: str | None) -> tuple[Manifest, ModelFile]:
    if path.is_dir() or path.name == MANIFEST_NAME:
        man = load_manifest(path)
        return man, man.file(precision, fmt)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    found = find_manifest_for(path)
    if found is None:
        raise ModelError(f"{path}: no {MANIFEST_NAME} beside it lists this file; a model "
                         "runs only with its manifest (input spec and sha256)")
    man = found
    f = next(f for f in man.files if f.path == path.resolve())
    return man, f


def load_model(path: str | Path, backend: str | None = None, threads: int = 1,
               precision: str = "auto") -> Model:
    """Load a model from a manifest (directory or ``manifest.json``) or one model file.

    ``backend`` (``onnxruntime``/``onnx`` or ``litert``/``tflite``) picks the
    file format when a manifest is given; for a file it must agree with it.
    """
    fmt = {None: None, "onnx": "onnx", "onnxruntime": "onnx", "tflite": "tflite",
           "litert": "tflite"}.get(backend, "?")
    if fmt == "?":
        raise ModelError(f"unknown backend {backend!r} (expected onnxruntime or litert)")
    if threads < 1:
        raise ModelError(f"threads must be >= 1, got {threads}")
    man, f = _resolve(Path(path), precision, fmt or "onnx")
    if fmt is not None and f.format != fmt:
        raise ModelError(f"{f.path.name} is a {f.format} file, not for backend {backend}")
    return Model(man, f, threads)


def list_models(root: str | Path | None = None) -> list[Manifest]:
    """Manifests of every model under ``root`` (default :func:`default_models_dir`)."""
    base = Path(root) if root is not None else default_models_dir()
    if not base.is_dir():
        return []
    return [load_manifest(p) for p in sorted(base.glob(f"*/{MANIFEST_NAME}"))]


class ModelHandle:
    """The current model of one role, reloadable without stopping the pipeline.

    Processors read :attr:`model` at each call, so a reload swaps the model
    between two inference calls; processor state (RR history, beat buffers)
    is untouched and no sample is lost. A reload is verified completely
    (manifest, sha256, load, warm-up) before the swap; if it fails, the old
    model stays and the error is logged. Triggers: :meth:`request_reload`
    (SIGHUP via :meth:`install_sighup`) and a changed manifest or model file
    (mtime or size, polled by :meth:`check`).
    """

    def __init__(self, path: str | Path, backend: str | None = None, threads: int = 1,
                 precision: str = "auto") -> None:
        self.path = Path(path)
        self._args = (backend, threads, precision)
        self.model = load_model(self.path, *self._args)
        self._stamp = self._file_stamp()
        self._reload_requested = False
        self.reloads = 0
        self.reload_errors = 0

    def _file_stamp(self) -> tuple[tuple[str, float, int], ...]:
        files = [self.model.file.path]
        mp = self.model.manifest.directory / MANIFEST_NAME
        if mp.exists():
            files.append(mp)
        out = []
        for p in files:
            try:
                st = p.stat()
                out.append((str(p), st.st_mtime, st.st_size))
            except OSError:
                out.append((str(p), -1.0, -1))
        return tuple(out)

    def request_reload(self) -> None:
        self._reload_requested = True

    def install_sighup(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Reload on SIGHUP (the daemon's convention for "re-read your files")."""
        loop = loop or asyncio.get_event_loop()
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def check(self) -> bool:
        """Reload if asked to or if the files changed; True when a new model is in place."""
        stamp = self._file_stamp()
        if not self._reload_requested and stamp == self._stamp:
            return False
        self._reload_requested = False
        self._stamp = stamp
        try:
            new = load_model(self.path, *self._args)
        except ModelError as exc:
            self.reload_errors += 1
            log.error("model reload refused, keeping %s: %s", self.model, exc)
            return False
        old, self.model = self.model, new
        old.close()
        self.reloads += 1
        log.info("model reloaded: %s", new)
        return True
