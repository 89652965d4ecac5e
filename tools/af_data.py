"""Runtime beats of the AF training records, as the pipeline produces them (cached).

Each record is replayed through the standard chain with the shipped models
(``edge.app.processor_factory``: QRS detector, beat classifier, ECG quality),
so the AF training script sees exactly the beats, beat labels and signal
quality the AF step sees at run time. Kept per record in a cache folder
(``.npz``: beat indices, labels, quality windows, reference AF / flutter
masks as intervals; one sub-folder per version of the beat and quality models
and the QRS code, :func:`runtime_key`) because a replay of the 22 MIT-BIH DS1 records takes
minutes. No MIT-BIH DS2 record is ever read here.

    python tools/af_data.py [--cache DIR]   # fills the cache
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_data as md  # noqa: E402
import train_common as tc  # noqa: E402

from edge.trace.recordings import Recording, load_wfdb  # noqa: E402
from edge.types import ChannelSpec  # noqa: E402

DEFAULT_CACHE = Path("/tmp/edge-af-cache")


def runtime_key() -> str:
    """What the cached beats depend on: the shipped beat and quality models' manifests and
    the QRS detector's code (a retrained beat model must never reuse stale labels)."""
    import hashlib

    h = hashlib.sha256()
    for part in (tc.REPO / "models" / "beat_nsv" / "manifest.json",
                 tc.REPO / "models" / "ecg_quality" / "manifest.json",
                 tc.REPO / "edge" / "dsp" / "qrs.py", tc.REPO / "edge" / "detect" / "models.py",
                 tc.REPO / "edge" / "detect" / "quality.py"):
        if part.exists():
            h.update(part.read_bytes())
    return h.hexdigest()[:12]


def _dir(cache: Path) -> Path:
    return cache / runtime_key()


def _intervals(mask: np.ndarray) -> np.ndarray:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1).astype(np.int64)


def rhythm_intervals(rec: Recording, prefix: str) -> np.ndarray:
    """``[start, end)`` intervals of the rhythm whose aux note starts with ``prefix``."""
    return _intervals(tc.rhythm_mask(rec, prefix))


def replay(rec: Recording) -> dict[str, Any]:
    """Beats (index, label) and the ECG quality windows of one replay of ``rec``."""
    from edge.clock import VirtualClock
    from edge.config import EdgeConfig
    from edge.detect.models import ModelSet, model_processor_factory
    from edge.detect.quality import EcgQualityProcessor
    from edge.evaluate.af import _Collect
    from edge.pipeline import Pipeline
    from edge.sources.open import DEFAULT_START_WALL
    from edge.sources.replay import RecordingSource

    cfg = EdgeConfig()
    models = ModelSet.from_config(cfg)
    src = RecordingSource(rec, block_s=cfg.pipeline.replay_block_s,
                          clock=VirtualClock(start_wall=rec.start_wall or DEFAULT_START_WALL))
    base = model_processor_factory(cfg, models)
    built: list[Any] = []

    def factory(ctx: Any) -> Any:
        procs = base(ctx)
        built.append(procs)
        return procs

    sink = _Collect()
    asyncio.run(Pipeline(factory, [sink], cfg.pipeline, src.clock).run(src))
    tl = next(p for ps in built for p in ps if isinstance(p, EcgQualityProcessor)).timeline
    return {"beat_index": np.array([b.index for b in sink.beats], np.int64),
            "beat_label": np.array([b.label or "Q" for b in sink.beats]),
            "q_start": np.array(tl._starts, np.int64), "q_end": np.array(tl._ends, np.int64),
            "q_value": np.array(tl._values, np.float64)}


def cinc_recording(name: str, sig: np.ndarray, fs: float) -> Recording:
    return Recording(name, fs, (ChannelSpec("ECG", "mV"),), sig.reshape(-1, 1).astype(np.float32))


def load(record: str, cache: Path = DEFAULT_CACHE) -> dict[str, Any]:
    """Cached replay of ``record`` (``mitdb-ds1/201``, ``cpsc2021/data_21_7``)."""
    assert not md.is_ds2(record), f"{record} is MIT-BIH DS2: never a training record"
    path = _dir(cache) / (record.replace("/", "__") + ".npz")
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    root = tc.data_root()
    if record.startswith("cinc2017/"):
        raise KeyError("CinC records are cached by fill_cinc()")
    rec = load_wfdb(root / record, annotator="atr")
    out = replay(rec)
    out.update(fs=np.float64(rec.fs), n=np.int64(rec.n_samples),
               af=rhythm_intervals(rec, "(AFIB"), afl=rhythm_intervals(rec, "(AFL"))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def fill_cinc(cache: Path = DEFAULT_CACHE) -> dict[str, str]:
    """Replay every CinC 2017 validation record once; returns record -> label (N A O ~)."""
    labels: dict[str, str] = {}
    _dir(cache).mkdir(parents=True, exist_ok=True)
    for name, label, sig, fs in tc.load_cinc2017(tc.data_root()):
        labels[f"cinc2017/{name}"] = label
        path = _dir(cache) / f"cinc2017__{name}.npz"
        if path.exists():
            continue
        out = replay(cinc_recording(name, sig, fs))
        n = len(sig)
        af = np.array([[0, n]] if label == "A" else np.zeros((0, 2)), np.int64)
        out.update(fs=np.float64(fs), n=np.int64(n), af=af, afl=np.zeros((0, 2), np.int64))
        np.savez_compressed(path, **out)
    return labels


def training_records() -> list[str]:
    """The AF training patients' records outside CinC (MIT-BIH DS1 and CPSC 2021)."""
    cpsc = [f"cpsc2021/{p.stem}" for p in sorted((tc.data_root() / "cpsc2021").glob("*.hea"))]
    return [f"mitdb-ds1/{r}" for r in md.DS1] + cpsc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    a = ap.parse_args()
    for r in training_records():
        d = load(r, a.cache)
        print(r, len(d["beat_index"]), "beats", flush=True)
    print(len(fill_cinc(a.cache)), "CinC records")


if __name__ == "__main__":
    main()
