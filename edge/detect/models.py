"""Pipeline steps that run the shipped models: AF episodes, and the model set.

* :class:`AfProcessor` scores a window of 32 RR intervals every
  ``AfConfig.hop_beats`` beats with the AF model and turns the probabilities
  into ``atrial_fibrillation`` episodes (hysteresis, minimum duration 30 s,
  merging of close episodes); ``detector`` / ``detector_version`` are the
  model's name and version, ``confidence`` its mean probability.
* The beat classifier (:class:`~edge.detect.beats.BeatClassifier`,
  :class:`~edge.detect.beats.ClassifiedQrs`) lives in :mod:`edge.detect.beats`
  and is re-exported here.

Models come from :class:`ModelSet` (loaded, verified and warmed up once,
before any stream starts; a model that fails its manifest refuses the start).
Inference runs inline: one call costs tens of microseconds (``edge model
bench``), less than a hand-off to an executor thread (see README "Models").
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge.config import AfConfig, EdgeConfig
from edge.detect.beats import BeatClassifier, ClassifiedQrs
from edge.detect.ecg import QrsProcessor
from edge.errors import ModelError
from edge.inference import ModelHandle, default_models_dir
from edge.inference import features as F
from edge.pipeline import Item, Output, Processor, StreamContext
from edge.types import Beat, Episode, Gap, Priority

__all__ = ["AF_EPISODE", "AfProcessor", "BeatClassifier", "ClassifiedQrs", "ModelSet",
           "model_processor_factory"]

log = logging.getLogger(__name__)

AF_EPISODE = "atrial_fibrillation"


# -- AF --------------------------------------------------------------------------------------

@dataclass
class _AfState:
    onset: int
    probs: list[float] = field(default_factory=list)
    last_positive: int = 0
    episode: Episode | None = None  # set once confirmed


class AfProcessor:
    """AF episodes from the AF model's RR-window probabilities (Beat + Gap in)."""

    def __init__(self, ctx: StreamContext, handle: ModelHandle, config: AfConfig) -> None:
        if handle.model.spec.features != F.AF_FEATURES:
            raise ModelError(f"model {handle.model.name} takes {handle.model.spec.features} "
                             f"features, the AF step needs {F.AF_FEATURES}")
        self.ctx = ctx
        self.handle = handle
        self.config = config
        self.name: str = handle.model.name
        self.version: str = handle.model.version  # episodes carry the live model's version
        # clean RR intervals (s) and the beat index ending each one
        self._rr: deque[float] = deque(maxlen=F.AF_WINDOW_RR)
        self._rr_end: deque[int] = deque(maxlen=F.AF_WINDOW_RR)
        self._prev: Beat | None = None
        self.rr_excluded = 0
        self._since = 0
        self._first_window = True
        self._state: _AfState | None = None
        self._recent: _AfState | None = None  # last ended episode, may be reopened
        self.windows_scored = 0

    def accepts(self, item: Item) -> bool:
        return isinstance(item, Beat | Gap)

    def feed(self, item: Item) -> Iterable[Output]:
        if isinstance(item, Gap):
            out = self._end(self._last_index(), "signal gap")
            self._rr.clear()
            self._rr_end.clear()
            self._prev = None
            self._since = 0
            self._first_window = True
            self._recent = None
            return out
        assert isinstance(item, Beat)
        prev = self._prev
        if prev is not None and item.index <= prev.index:
            return []  # a beat seen already (defensive: never count one twice)
        self._prev = item
        if prev is None:
            return []
        if self.config.exclude_ectopic_rr and "V" in (prev.label, item.label):
            self.rr_excluded += 1
            return []
        self._rr.append((item.index - prev.index) / self.ctx.fs)
        self._rr_end.append(item.index)
        self._since += 1
        if len(self._rr) < F.AF_WINDOW_RR or self._since < self.config.hop_beats:
            return []
        self._since = 0
        rr = np.asarray(self._rr, dtype=np.float64)
        p = float(self.handle.model.run(F.af_features(rr))[0, 1])
        self.windows_scored += 1
        end = int(self._rr_end[-1])
        start = int(self._rr_end[0] - round(self._rr[0] * self.ctx.fs))
        centre = (start + end) // 2
        first = self._first_window
        self._first_window = False
        return self._update(p, start if first else centre, centre, end)

    def flush(self) -> Iterable[Output]:
        return self._end(self._last_index(), "end of stream")

    # -- episode logic ---------------------------------------------------------------------
    def _last_index(self) -> int:
        return self._prev.index if self._prev is not None else 0

    def _update(self, p: float, onset: int, centre: int, end: int) -> list[Output]:
        c = self.config
        fs = self.ctx.fs
        st = self._state
        if st is None:
            if p < c.on_probability:
                return []
            recent = self._recent
            if (recent is not None and recent.episode is not None
                    and (onset - recent.last_positive) / fs <= c.merge_gap_s):
                self._state, self._recent = recent, None  # AF resumed: same episode
                recent.probs.append(p)
                recent.last_positive = centre
                recent.episode = replace(recent.episode, status="ongoing", details={
                    **recent.episode.details,
                    "reopened": recent.episode.details.get("reopened", 0) + 1})
                return [recent.episode]
            self._state = _AfState(onset, [p], centre)
            return []
        if p < c.off_probability:
            if st.episode is None:
                self._state = None  # a candidate that did not last
                return []
            return self._end(st.last_positive, "rhythm changed")
        st.probs.append(p)
        st.last_positive = centre
        if st.episode is None and (centre - st.onset) / fs >= c.min_duration_s:
            st.episode = replace(self._episode(st, centre), status="ongoing")
            return [st.episode]
        return []

    def _episode(self, st: _AfState, offset: int) -> Episode:
        m = self.handle.model
        return Episode(
            kind=AF_EPISODE, key=self.ctx.key, onset=self.ctx.wall(st.onset),
            offset=self.ctx.wall(offset), onset_index=st.onset, offset_index=offset,
            priority=Priority.WARNING, detector=m.name, detector_version=m.version,
            confidence=round(float(np.mean(st.probs)), 3),
            details={"model": m.name, "format": m.format, "precision": m.precision,
                     "backend": m.backend_name, "windows": len(st.probs),
                     "p_max": round(float(np.max(st.probs)), 3),
                     "min_duration_s": self.config.min_duration_s})

    def _end(self, offset: int, ended_by: str) -> list[Output]:
        st = self._state
        self._state = None
        if st is None or st.episode is None:
            return []
        offset = max(offset, st.onset)
        final = self._episode(st, offset)
        final = replace(final, id=st.episode.id, status="ended",
                        details={**st.episode.details, **final.details, "ended_by": ended_by})
        st.episode = final
        self._recent = st
        return [final]


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

    def beat_steps(self, ctx: StreamContext, config: EdgeConfig) -> Sequence[Processor]:
        """Processors that consume beats (AF), placed after the QRS step."""
        if self.af is None:
            return []
        return [AfProcessor(ctx, self.af, config.af)]


def model_processor_factory(config: EdgeConfig, models: ModelSet):  # type: ignore[no-untyped-def]
    """The standard chain with the models in place: exactly ``edge.app.processor_factory``."""
    from edge.app import processor_factory

    return processor_factory(config, models)
