"""Pipeline steps that run the shipped models: the model set and its assembly.

* AF episodes: :class:`~edge.detect.af.AfProcessor` (its own module,
  :mod:`edge.detect.af`).
* Beat labels: :class:`~edge.detect.beats.BeatClassifier` and
  :class:`~edge.detect.beats.ClassifiedQrs` (their own module,
  :mod:`edge.detect.beats`).

Both are re-exported here for existing imports.

Models come from :class:`ModelSet` (loaded, verified and warmed up once,
before any stream starts; a model that fails its manifest refuses the start).
Inference runs inline: one call costs tens of microseconds (``edge model
bench``), less than a hand-off to an executor thread (see README "Models").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from edge.config import EdgeConfig
from edge.detect.af import AF_BURST, AF_EPISODE, AfProcessor
from edge.detect.beats import BeatClassifier, ClassifiedQrs
from edge.detect.ecg import QrsProcessor
from edge.errors import ModelError
from edge.inference import ModelHandle, default_models_dir
from edge.pipeline import Processor, StreamContext

log = logging.getLogger(__name__)

__all__ = ["AF_BURST", "AF_EPISODE", "AfProcessor", "BeatClassifier", "ClassifiedQrs",
           "ModelSet", "model_processor_factory"]


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
