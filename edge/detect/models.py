"""Pipeline steps that run the shipped models: N/S/V beat labels, and the model set.

* AF episodes: :class:`~edge.detect.af.AfProcessor` (its own module,
  :mod:`edge.detect.af`; re-exported here for existing imports).
* :class:`BeatClassifier` keeps a short ring buffer of the ECG samples and
  labels each beat N / S / V (``Beat.label``, ``Beat.confidence``) with the
  beat model once the signal after the beat has arrived (<= 1.2 s); a V label
  on a beat whose QRS matches the patient's recent N beats is overruled
  (:mod:`edge.detect.beat_morphology`).
* :class:`ClassifiedQrs` chains the QRS detector and the beat classifier in
  one pipeline step. The pipeline forwards an item to every later processor
  and to the sinks, so a separate classifier step would make every beat
  arrive twice (once unlabelled); the chained step emits each beat once,
  already labelled. Use it in place of :class:`~edge.detect.ecg.QrsProcessor`.

Models come from :class:`ModelSet` (loaded, verified and warmed up once,
before any stream starts; a model that fails its manifest refuses the start).
Inference runs inline: one call costs tens of microseconds (``edge model
bench``), less than a hand-off to an executor thread (see README "Models").
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.config import BeatClassifierConfig, EdgeConfig
from edge.detect.af import AF_BURST, AF_EPISODE, AfProcessor
from edge.detect.beat_morphology import NormalBeatTemplate
from edge.detect.ecg import QrsProcessor
from edge.errors import ModelError
from edge.inference import ModelHandle, default_models_dir
from edge.inference import features as F
from edge.pipeline import Item, Output, Processor, StreamContext
from edge.types import Beat, Gap
from edge.windowing import Window

log = logging.getLogger(__name__)

__all__ = ["AF_BURST", "AF_EPISODE", "AfProcessor", "BeatClassifier", "ClassifiedQrs",
           "ModelSet", "model_processor_factory"]


# -- beats -----------------------------------------------------------------------------------

class BeatClassifier:
    """Labels beats N / S / V with the beat model (Window + Beat + Gap in, Beats out).

    A beat is classified when the signal up to ``SEG_POST_S`` after it has
    arrived and either its successor is known or ``POST_RR_CAP_S`` has passed
    (the same rule the training script applies); beats ready together are
    classified in one batch. Beats without enough signal before them (just
    after a gap) keep label Q. Output order is input order.
    """

    def __init__(self, ctx: StreamContext, handle: ModelHandle,
                 config: BeatClassifierConfig) -> None:
        model = handle.model
        if model.spec.features != F.BEAT_FEATURES:
            raise ModelError(f"model {model.name} takes {model.spec.features} features, the "
                             f"beat step needs {F.BEAT_FEATURES}")
        model.spec.check_stream(ctx.fs, model.name)
        self.ctx = ctx
        self.handle = handle
        self.config = config
        self.name: str = model.name
        # the model's version and the version of the label rules applied after it
        self.version: str = f"{model.version}+{NormalBeatTemplate.version}"
        fs = ctx.fs
        self._keep = int((F.SEG_PRE_S + F.POST_RR_CAP_S + 4.0) * fs)
        self._buf = np.zeros(0, dtype=np.float64)
        self._buf_start = 0
        self._pending: deque[Beat] = deque()
        self._prev: int | None = None
        self._ext = F.BeatFeatureExtractor()
        self._normal = NormalBeatTemplate(config)
        self.classified = 0

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Beat | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Window):
            self.add_samples(item.start_index, item.data[:, 0])
            return self.ready()
        if isinstance(item, Beat):
            self.add_beat(item)
            return self.ready()
        assert isinstance(item, Gap)
        return self.drain()

    def flush(self) -> Iterable[Output]:
        return self.drain()

    # -- pieces (also used by ClassifiedQrs) ------------------------------------------------
    @property
    def _buf_end(self) -> int:
        return self._buf_start + len(self._buf)

    def add_samples(self, start: int, data: np.ndarray) -> None:
        x = np.asarray(data, dtype=np.float64)
        if len(self._buf) and start > self._buf_end:
            self._buf = np.zeros(0)  # discontinuity: never splice across missing samples
        if len(self._buf) == 0:
            self._buf_start = start
        elif start < self._buf_end:
            x = x[self._buf_end - start:]  # overlapping windows: the new part only
        self._buf = np.concatenate([self._buf, x])
        if len(self._buf) > self._keep:
            cut = len(self._buf) - self._keep
            self._buf = self._buf[cut:]
            self._buf_start += cut

    def add_beat(self, beat: Beat) -> None:
        self._pending.append(beat)

    def ready(self, final: bool = False) -> list[Output]:
        """Classify (in one batch) the pending beats whose context has arrived."""
        fs = self.ctx.fs
        cap = int(round(F.POST_RR_CAP_S * fs))
        todo: list[tuple[Beat, float | None, float | None]] = []
        while self._pending:
            b = self._pending[0]
            nxt = self._pending[1].index if len(self._pending) > 1 else None
            _, hi = F.beat_segment_bounds(b.index, fs)
            if not final and (self._buf_end < hi or (nxt is None and self._buf_end < b.index
                                                     + cap)):
                break
            self._pending.popleft()
            pre = None if self._prev is None else (b.index - self._prev) / fs
            self._prev = b.index
            post = None if nxt is None else (nxt - b.index) / fs
            todo.append((b, pre, post))
        if not todo:
            return []
        rows, which, waves = [], [], []
        out: list[Beat] = [b for b, _, _ in todo]
        for k, (b, pre, post) in enumerate(todo):
            lo, hi = F.beat_segment_bounds(b.index, fs)
            if lo < self._buf_start or hi > self._buf_end:
                continue  # not enough signal around it: stays Q, template untouched
            seg = self._buf[lo - self._buf_start:hi - self._buf_start]
            wave = F.beat_waveform(seg, fs)
            rows.append(self._ext.features(wave, pre, post))
            which.append(k)
            waves.append(wave)
        if rows:
            probs = self._run(np.stack(rows))
            classes = self.handle.model.classes
            for k, p, wave in zip(which, probs, waves, strict=True):
                j = int(np.argmax(p))
                conf = float(p[j])
                label = classes[j] if conf >= self.config.min_confidence else "Q"
                if label == "V" and (r := self._normal.match(wave)) is not None:
                    # QRS like the patient's conducted beats: not ventricular.
                    # The confidence is then the match's correlation.
                    label, conf = "N", r
                self._normal.add(wave, label)
                out[k] = replace(out[k], label=label, confidence=round(conf, 3))
            self.classified += len(rows)
        return list(out)

    def _run(self, x: np.ndarray) -> np.ndarray:
        model = self.handle.model
        step = max(1, self.config.max_batch)
        return np.concatenate([model.run(x[i:i + step]) for i in range(0, len(x), step)])

    def drain(self) -> list[Output]:
        """Gap or end of stream: classify what can be, emit everything, reset."""
        out = self.ready(final=True)
        self._buf = np.zeros(0)
        self._prev = None
        self._ext.reset()
        self._normal.reset()
        return out


class ClassifiedQrs:
    """QRS detection and beat classification as one step: every beat leaves once, labelled."""

    def __init__(self, qrs: QrsProcessor, classifier: BeatClassifier) -> None:
        self.qrs = qrs
        self.classifier = classifier
        self.name = f"{qrs.name}+{classifier.name}"
        self.version = f"{qrs.version}+{classifier.version}"

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Window | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        beats = [b for b in self.qrs.feed(item) if isinstance(b, Beat)]
        if isinstance(item, Window):
            self.classifier.add_samples(item.start_index, item.data[:, 0])
        for b in beats:
            self.classifier.add_beat(b)
        if isinstance(item, Gap):
            return self.classifier.drain()
        return self.classifier.ready()

    def flush(self) -> Iterable[Output]:
        for b in self.qrs.flush():
            if isinstance(b, Beat):
                self.classifier.add_beat(b)
        return self.classifier.drain()


# -- assembly --------------------------------------------------------------------------------

class ModelSet:
    """The models the pipeline runs, loaded once (verified, warmed up) before streams start."""

    def __init__(self, af: ModelHandle | None, beat: ModelHandle | None) -> None:
        self.af = af
        self.beat = beat

    @classmethod
    def from_config(cls, config: EdgeConfig) -> ModelSet:
        """Load the configured models; raises :class:`ModelError` on any mismatch."""
        ic = config.inference
        root = Path(ic.models_dir) if ic.models_dir else default_models_dir()

        def load(name: str) -> ModelHandle | None:
            if not name:
                return None
            return ModelHandle(root / name, ic.backend, ic.threads, ic.precision)

        return cls(load(ic.af_model), load(ic.beat_model))

    @property
    def handles(self) -> list[ModelHandle]:
        return [h for h in (self.af, self.beat) if h is not None]

    def check_reload(self) -> int:
        """Reload models whose files changed or that SIGHUP asked for; count reloads."""
        return sum(h.check() for h in self.handles)

    def qrs_step(self, ctx: StreamContext, qrs: QrsProcessor, config: EdgeConfig) -> Processor:
        """The QRS step, with beat classification chained when a beat model is configured."""
        if self.beat is None:
            return qrs
        try:
            clf = BeatClassifier(ctx, self.beat, config.beat_classifier)
        except ModelError as exc:
            log.error("stream %s: beat classification off: %s", ctx.key, exc)
            return qrs
        return ClassifiedQrs(qrs, clf)

    def beat_steps(self, ctx: StreamContext, config: EdgeConfig,
                   quality_at: Callable[[int], float | None] | None = None,
                   ) -> Sequence[Processor]:
        """Processors that consume beats (AF), placed after the QRS step.

        ``quality_at``: the ECG quality timeline's SQI at a sample; AF withholds
        judgement on windows with too little signal at ``[af] min_sqi``.
        """
        if self.af is None:
            return []
        return [AfProcessor(ctx, self.af, config.af, quality_at)]


def model_processor_factory(config: EdgeConfig, models: ModelSet):  # type: ignore[no-untyped-def]
    """The standard chain with the models in place: exactly ``edge.app.processor_factory``."""
    from edge.app import processor_factory

    return processor_factory(config, models)
