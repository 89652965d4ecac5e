"""Per-patient clinician settings: [patients.<pseudonym>] tables, overrides, validation."""

from __future__ import annotations

import pytest

from edge.config import (
    EdgeConfig,
    PatientConfig,
    config_for_patient,
    example_toml,
    load_config,
    patient_for_device,
)
from edge.errors import ConfigError

GOOD = """
[patients.p-0042]
devices = ["chest-01", "oxi-01"]
news2_eligible = true
spo2_scale = 2
spo2_scale_entered_at = "2025-03-01T09:00:00Z"
on_oxygen = "oxygen"
on_oxygen_entered_at = "2025-03-01T09:05:00+00:00"
consciousness = "A"
consciousness_entered_at = "2025-03-01T09:05:00Z"
entered_by = "rn-17"

[patients.p-0042.overrides]
"rate_rules.tachy_bpm" = 110
"vital_rules.spo2_low_scale2_pct" = 85
"""


def _load(tmp_path, text):
    p = tmp_path / "edge.toml"
    p.write_text(text)
    return load_config(p)


def test_patients_load_as_tables_keyed_by_pseudonym(tmp_path):
    cfg = _load(tmp_path, GOOD)
    p = cfg.patients["p-0042"]
    assert isinstance(p, PatientConfig)
    assert p.devices == ("chest-01", "oxi-01") and p.spo2_scale == 2
    assert patient_for_device(cfg, "oxi-01") == ("p-0042", p)
    assert patient_for_device(cfg, "other") is None


def test_overrides_apply_to_that_patient_only(tmp_path):
    cfg = _load(tmp_path, GOOD)
    mine = config_for_patient(cfg, cfg.patients["p-0042"])
    assert mine.rate_rules.tachy_bpm == 110.0 and isinstance(mine.rate_rules.tachy_bpm, float)
    assert mine.vital_rules.spo2_low_scale2_pct == 85.0
    assert cfg.rate_rules.tachy_bpm == EdgeConfig().rate_rules.tachy_bpm
    assert config_for_patient(cfg, None) is cfg


@pytest.mark.parametrize("text,match", [
    ('[patients.x]\nspo2_scale = 3\n', "spo2_scale: expected 1 or 2"),
    ('[patients.x]\non_oxygen = "maybe"\n', "on_oxygen"),
    ('[patients.x]\nconsciousness = "X"\n', "consciousness"),
    ('[patients.x]\nconsciousness_entered_at = "yesterday"\n', "ISO 8601"),
    ('[patients.x]\nconsciousness_entered_at = "2025-03-01T09:00:00"\n', "ISO 8601"),
    ('[patients.x]\nbed = 4\n', r"patients.x: unknown key 'bed'"),
    ('[patients.x.overrides]\n"rate_rules.tachy" = 110\n', "has no setting 'tachy'"),
    ('[patients.x.overrides]\n"nosuch.tachy_bpm" = 110\n', "no settings section 'nosuch'"),
    ('[patients.x.overrides]\n"store.path" = 1\n', "only numeric settings"),
    ('patients = 3\n', "expected tables"),
])
def test_bad_patient_settings_are_refused_with_a_clear_message(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        _load(tmp_path, text)


def test_the_example_shows_a_commented_patient_table_and_still_loads(tmp_path):
    text = example_toml()
    assert "# [patients.NAME]" in text
    assert _load(tmp_path, text).patients == {}
