"""Configuration: every threshold documented, every error names file, key and expectation."""

import dataclasses
import tomllib

import pytest

from edge.config import EdgeConfig, example_toml, load_config
from edge.errors import ConfigError


def test_every_setting_has_a_rationale():
    missing = []
    for section in dataclasses.fields(EdgeConfig):
        for f in dataclasses.fields(section.type if isinstance(section.type, type)
                                    else getattr(EdgeConfig(), section.name)):
            if not f.metadata.get("rationale"):
                missing.append(f"{section.name}.{f.name}")
    assert missing == []


def test_the_example_is_valid_toml_that_loads_back_to_the_defaults(tmp_path):
    text = example_toml()
    tomllib.loads(text)
    p = tmp_path / "edge.toml"
    p.write_text(text)
    assert load_config(p) == EdgeConfig()


def test_a_file_overrides_only_what_it_names(tmp_path):
    p = tmp_path / "edge.toml"
    p.write_text("[rate_rules]\ntachy_bpm = 130\n")
    cfg = load_config(p)
    assert cfg.rate_rules.tachy_bpm == 130.0
    assert cfg.rate_rules.brady_bpm == EdgeConfig().rate_rules.brady_bpm


@pytest.mark.parametrize("text,match", [
    ("[rate_rules]\ntachy = 130\n", r"rate_rules: unknown key 'tachy'"),
    ("[rate_rules]\ntachy_bpm = 'fast'\n", r"rate_rules.tachy_bpm: expected float"),
    ("[nope]\nx = 1\n", r"unknown key 'nope'"),
    ("[rate_rules\n", r"not valid TOML"),
])
def test_errors_name_the_file_the_key_and_what_is_expected(tmp_path, text, match):
    p = tmp_path / "edge.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as exc:
        load_config(p)
    assert str(p) in str(exc.value)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
