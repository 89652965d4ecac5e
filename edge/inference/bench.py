"""Per-call latency of every shipped model on every backend and precision.

For each model file: p50/p99 of :meth:`Model.run` (feature normalisation,
int8 quantisation for TFLite, the runtime call, dequantisation) at batch 1
and at a batch that pays, and of a bare ``session.run`` / ``invoke`` loop on
the same prepared inputs; their ratio is the API's overhead. Also: how long
the event loop is blocked per call when inference runs inline versus through
:meth:`Model.run_async` (a single worker thread).
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import BackendUnavailableError
from edge.inference import Model, available_backends, list_models, load_model


def _times(fn: Callable[[], Any], n: int) -> np.ndarray:
    for _ in range(min(50, n)):
        fn()
    out = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out / 1e3  # microseconds


def _stats(us: np.ndarray) -> dict[str, float]:
    return {"p50_us": round(float(np.percentile(us, 50)), 2),
            "p99_us": round(float(np.percentile(us, 99)), 2)}


def sample_inputs(model: Model, batch: int, seed: int = 0) -> np.ndarray:
    """Feature rows around the training distribution (mean + std * N(0, 1)), seeded."""
    rng = np.random.default_rng(seed)
    spec = model.spec
    return (spec.mean + spec.std * rng.standard_normal((batch, spec.n_features))
            ).astype(np.float32)


def bench_model(model: Model, batches: tuple[int, ...], calls: int) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model.name, "version": model.version,
                           "format": model.format, "precision": model.precision,
                           "backend": model.backend_name, "file": model.file.path.name,
                           "bytes": model.file.path.stat().st_size, "threads": model.threads,
                           "batches": {}}
    for b in batches:
        x = sample_inputs(model, b)
        def call(x: np.ndarray = x) -> np.ndarray:
            return model.run(x)

        api = _times(call, calls)
        bare = _times(model.backend.bare_call(model.prepare(x)), calls)
        a, r = _stats(api), _stats(bare)
        out["batches"][str(b)] = {
            "api": a, "bare": r,
            "ratio_p50": round(a["p50_us"] / max(r["p50_us"], 1e-3), 3),
            "per_item_p50_us": round(a["p50_us"] / b, 3)}
    return out


async def _loop_block(model: Model, calls: int, use_executor: bool) -> dict[str, float]:
    """Longest and median time the loop was unable to run other tasks, per inference."""
    x = sample_inputs(model, 1)
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            t0 = time.perf_counter()
            await asyncio.sleep(0)
            lags.append(time.perf_counter() - t0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    for _ in range(calls):
        if use_executor:
            await model.run_async(x)
        else:
            model.run(x)
            await asyncio.sleep(0)
    stop = True
    await task
    arr = np.asarray(lags) * 1e6
    return {"max_us": round(float(arr.max()), 1), "p99_us": round(float(np.percentile(arr, 99)),
                                                                  1)}


def event_loop_blocking(model: Model, calls: int = 300) -> dict[str, Any]:
    inline = asyncio.run(_loop_block(model, calls, False))
    offloaded = asyncio.run(_loop_block(model, calls, True))
    t_async = _times(lambda: asyncio.run(model.run_async(sample_inputs(model, 1))), 50)
    model.close()
    return {"model": model.name, "file": model.file.path.name,
            "inline": inline, "executor": offloaded,
            "note": "loop stall per scheduling step; run_async adds a thread hand-off "
                    f"(asyncio.run + run_async p50 {np.percentile(t_async, 50):.0f} us)"}


def bench_all(root: str | Path | None = None, batches: tuple[int, ...] = (1, 32),
              calls: int = 1000, threads: int = 1) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    loop_block: list[dict[str, Any]] = []
    for man in list_models(root):
        for f in man.files:
            try:
                model = load_model(f.path, threads=threads)
            except BackendUnavailableError as exc:
                unavailable[f.backend] = str(exc)
                continue
            results.append(bench_model(model, batches, calls))
            if f.format == "onnx" and f.precision == "int8":
                loop_block.append(event_loop_blocking(model))
    return {"machine": {"python": platform.python_version(), "arch": platform.machine(),
                        "processor": platform.processor() or platform.machine(),
                        "numpy": np.__version__},
            "backends": available_backends(), "unavailable": unavailable,
            "calls": calls, "threads": threads, "results": results,
            "event_loop": loop_block}
