"""The beat classifier runs the training code path: live labels equal offline decisions;
paced patients get no V label on paced beats."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from edge.config import EdgeConfig, PatientConfig, config_for_patient
from edge.detect.models import ModelSet
from edge.evaluate.af import replay_with_models
from edge.inference import features as F
from edge.trace.recordings import load_wfdb


@pytest.fixture(scope="module")
def models() -> ModelSet:
    return ModelSet.from_config(EdgeConfig())


def test_live_labels_equal_the_model_on_the_training_feature_rows(data_dir, models):
    # DS1 record 119 (bigeminy): 5 min through the streaming pipeline, with the rules
    # applied after the model turned off, against the offline feature function the
    # training script uses, on the same detections.
    rec = load_wfdb(data_dir / "mitdb-ds1" / "119")
    rec.signal = rec.signal[: int(300 * rec.fs)]
    cfg = EdgeConfig()
    cfg = replace(cfg, beat_classifier=replace(cfg.beat_classifier, normal_match_corr=1.1,
                                                min_confidence=0.0))
    beats, _ = asyncio.run(replay_with_models(rec, cfg, models))
    idx = np.array([b.index for b in beats])
    rows, ok = F.beat_feature_rows(rec.signal[:, 0].astype(np.float64), rec.fs, idx)
    model = models.beat.model
    offline = [model.classes[k] for k in np.argmax(model.run(rows[ok]), axis=1)]
    live = [b.label for b, k in zip(beats, ok, strict=True) if k]
    assert len(live) > 300 and {"N", "V"} <= set(live)
    # the last beat waits for a successor the offline pass cannot see either way
    assert live[:-1] == offline[:-1]


def test_paced_is_set_per_patient():
    cfg = EdgeConfig()
    assert not cfg.beat_classifier.paced
    assert config_for_patient(cfg, PatientConfig(paced=True)).beat_classifier.paced
    assert not config_for_patient(cfg, PatientConfig()).beat_classifier.paced


def test_paced_beats_are_not_called_v_when_the_patient_is_paced(data_dir, models):
    rec = load_wfdb(data_dir / "mitdb-paced" / "107")
    rec.signal = rec.signal[: int(600 * rec.fs)]
    paced_ref = np.array([i for i, s in zip(rec.ann_index, rec.ann_symbol, strict=True)
                          if s == "/"])
    cfg = EdgeConfig()
    paced = replace(cfg, beat_classifier=replace(cfg.beat_classifier, paced=True))

    def v_on_paced(config: EdgeConfig) -> int:
        beats, _ = asyncio.run(replay_with_models(rec, config, models))
        v = np.array([b.index for b in beats if b.label == "V"])
        if not v.size:
            return 0
        return int(np.sum(np.min(np.abs(paced_ref[:, None] - v[None, :]), axis=1)
                          <= 0.15 * rec.fs))

    with_paced = v_on_paced(paced)
    assert with_paced <= v_on_paced(cfg)
    assert with_paced <= 0.02 * len(paced_ref)
