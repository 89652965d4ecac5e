"""Assembly: which processors a stream gets, and the sinks every run uses.

The CLI commands (``edge demo``, ``edge replay``, ``edge evaluate``, ``edge
bench``) and the daemon all build their pipeline here, so they run exactly
the same detection code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.clock import Clock
from edge.config import EdgeConfig, config_for_patient, patient_for_device
from edge.detect.baseline import BaselineProcessor, BaselineTracker
from edge.detect.ecg import QrsProcessor
from edge.detect.ectopy import EctopyProcessor
from edge.detect.evidence import EvidenceRecorder, EvidenceStore
from edge.detect.models import ModelSet
from edge.detect.news2 import News2Processor
from edge.detect.quality import EcgQualityProcessor
from edge.detect.rate import HeartRateProcessor, RateRules
from edge.detect.vitals import (
    PpgHeartRateProcessor,
    RespRateProcessor,
    VitalRules,
    sample_wall,
)
from edge.pipeline import Output, Pipeline, PipelineStats, Processor, StreamContext
from edge.sources.base import Source
from edge.store.outbox import Outbox, OutboxSink
from edge.trace.recordings import ECG_LEADS
from edge.types import (
    Beat,
    Block,
    ChannelSpec,
    Episode,
    Gap,
    StreamKey,
    VitalKind,
    VitalSample,
)

_ECG_STREAMS = {"ecg", "ekg"}
_PPG_NAMES = ("PPG", "PLETH")
_RESP_NAMES = ("RESP",)


def stream_kind(ctx: StreamContext) -> str:
    """``ecg``, ``ppg``, ``resp`` (waveforms) or ``vitals`` (numeric samples only)."""
    return kind_of(ctx.key, ctx.channels)


def kind_of(key: StreamKey, channels: Sequence[ChannelSpec]) -> str:
    """The kind of a stream from its key and channels (see :func:`stream_kind`)."""
    names = [c.name.upper() for c in channels]
    if key.stream.lower() in _ECG_STREAMS or any(n in ECG_LEADS for n in names):
        return "ecg"
    if key.stream.lower() in ("ppg", "pleth") or any(n.startswith(_PPG_NAMES)
                                                     for n in names):
        return "ppg"
    if key.stream.lower() == "resp" or any(n.startswith(_RESP_NAMES) for n in names):
        return "resp"
    return "vitals"


def is_ecg_stream(ctx: StreamContext) -> bool:
    return stream_kind(ctx) == "ecg"


def load_models(config: EdgeConfig) -> ModelSet:
    """The configured models, verified (sha256, input spec) and warmed up.

    Raises :class:`~edge.errors.ModelError` with one clear line before any
    stream starts; an empty model name in ``[inference]`` turns that model off.
    """
    return ModelSet.from_config(config)


def processor_factory(config: EdgeConfig, models: ModelSet | None = None,  # type: ignore[no-untyped-def]
                      evidence: EvidenceStore | None = None):
    """The per-stream processors of the standard pipeline.

    ECG streams: QRS detection (with beat classification chained in when a
    beat model is loaded) -> AF from RR intervals (model) -> heart rate ->
    rate rules (brady, tachy, pause, asystole).
    """
    models = models if models is not None else ModelSet(None, None)
    contexts: dict[StreamKey, StreamContext] = {}
    per_patient: dict[str, tuple[BaselineTracker, News2Processor]] = {}

    def build(ctx: StreamContext) -> Sequence[Processor]:
        # each patient (pseudonym from [patients.*], else the device) gets one baseline
        # and one NEWS2 scorer, shared by all of that patient's streams
        found = patient_for_device(config, ctx.key.device)
        name, patient = found if found is not None else (ctx.key.device, None)
        cfg = config_for_patient(config, patient)
        contexts[ctx.key] = ctx
        if name not in per_patient:
            per_patient[name] = (
                BaselineTracker(cfg.baseline),
                News2Processor(cfg.news2, patient,
                               wall_of=lambda s: sample_wall(contexts[s.key], s),
                               min_quality=cfg.vital_rules.min_quality, pseudonym=name))
        tracker, news2 = per_patient[name]
        common: list[Processor] = [BaselineProcessor(ctx, cfg.baseline, tracker),
                                   VitalRules(ctx, cfg.vital_rules, patient, tracker), news2]
        kind = stream_kind(ctx)
        tail: list[Processor] = []
        if evidence is not None and cfg.evidence.enabled and kind != "vitals":
            tail.append(EvidenceRecorder(ctx, cfg.evidence, evidence))  # sees every episode
        if kind == "ecg":
            quality = EcgQualityProcessor(ctx, cfg.ecg_quality)
            return [
                quality,
                models.qrs_step(ctx, QrsProcessor(ctx, cfg.qrs), cfg),
                *models.beat_steps(ctx, cfg, quality.timeline.quality_at),
                EctopyProcessor(ctx, cfg.ectopy),
                HeartRateProcessor(ctx, cfg.heart_rate),
                RateRules(ctx, cfg.rate_rules, cfg.heart_rate, quality.timeline),
                *common,
                *tail,
            ]
        if kind == "ppg":
            return [PpgHeartRateProcessor(ctx, cfg.ppg), *common, *tail]
        if kind == "resp":
            return [RespRateProcessor(ctx, cfg.resp), *common, *tail]
        return common

    return build


@dataclass
class Summary:
    """What a run found: beats, heart rate, gaps and episodes (the demo's report)."""

    beats: int = 0
    beat_index: list[int] = field(default_factory=list)
    beat_classes: list[str] = field(default_factory=list)  # label of each kept beat
    beat_labels: dict[str, int] = field(default_factory=dict)
    heart_rates: list[float] = field(default_factory=list)
    gaps: int = 0
    episodes: dict[str, Episode] = field(default_factory=dict)  # latest revision by id
    keep_beats: bool = True

    def episodes_by_kind(self) -> dict[str, int]:
        return dict(Counter(ep.kind for ep in self.episodes.values()))

    def to_dict(self) -> dict[str, Any]:
        hr = np.asarray(self.heart_rates) if self.heart_rates else None
        return {
            "beats": self.beats,
            "beats_by_class": dict(sorted(self.beat_labels.items())),
            "heart_rate_bpm": None if hr is None else {
                "min": round(float(hr.min()), 1), "max": round(float(hr.max()), 1),
                "mean": round(float(hr.mean()), 1), "n": int(hr.size)},
            "gaps": self.gaps,
            "episodes_by_kind": self.episodes_by_kind(),
            "episodes": [ep.to_dict() for ep in sorted(self.episodes.values(),
                                                         key=lambda e: e.onset_index)],
        }


class SummarySink:
    """Collects a :class:`Summary` from the pipeline's outputs."""

    def __init__(self, keep_beats: bool = True) -> None:
        self.summary = Summary(keep_beats=keep_beats)

    async def handle(self, item: Output) -> None:
        s = self.summary
        if isinstance(item, Beat):
            s.beats += 1
            s.beat_labels[item.label] = s.beat_labels.get(item.label, 0) + 1
            if s.keep_beats:
                s.beat_index.append(item.index)
                s.beat_classes.append(item.label)
        elif isinstance(item, VitalSample) and item.kind is VitalKind.HEART_RATE:
            s.heart_rates.append(item.value)
        elif isinstance(item, Gap):
            s.gaps += 1
        elif isinstance(item, Episode):
            s.episodes[item.id] = item

    async def close(self) -> None:
        return None


async def run_pipeline(source: Source, config: EdgeConfig, *, clock: Clock | None = None,
                       outbox: Outbox | None = None, keep_beats: bool = True,
                       on_block: Callable[[Block], None] | None = None,
                       models: ModelSet | None = None,
                       ) -> tuple[PipelineStats, Summary]:
    """Run one source through the standard pipeline; return its stats and summary.

    ``models`` defaults to the configured ones (loaded and verified here).
    """
    if models is None:
        models = load_models(config)
    summary = SummarySink(keep_beats=keep_beats)
    sinks: list[Any] = [summary]
    if outbox is not None:
        sinks.append(OutboxSink(outbox))
    evidence = outbox.put_evidence if outbox is not None else None
    pipeline = Pipeline(processor_factory(config, models, evidence), sinks, config.pipeline,
                        clock or getattr(source, "clock", None))
    pipeline.on_block = on_block
    stats = await pipeline.run(source)
    return stats, summary.summary
