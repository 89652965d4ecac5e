"""Configuration: every threshold documented, every error names file, key and expectation."""

import dataclasses
import tomllib

import pytest

from edge.config import EdgeConfig, example_toml, load_config
from edge.errors import ConfigError


def test_every_setting_has_a_rationale():
    import typing

    missing = []
    hints = typing.get_type_hints(EdgeConfig)
    for section in dataclasses.fields(EdgeConfig):
        cls = [t for t in (hints[section.name], *typing.get_args(hints[section.name]))
               if dataclasses.is_dataclass(t)][0]
        for f in dataclasses.fields(cls):
            if not f.metadata.get("rationale"):
                missing.append(f"{section.name}.{f.name}")
    assert missing == []


def test_sources_are_a_list_of_tables(tmp_path):
    p = tmp_path / "edge.toml"
    p.write_text('[[sources]]\ntype = "serial"\nport = "/dev/ttyACM0"\n'
                 '[[sources]]\ntype = "replay"\npath = "t.vetrace"\nloop = true\n')
    cfg = load_config(p)
    assert [s.type for s in cfg.sources] == ["serial", "replay"]
    assert cfg.sources[1].loop is True


def test_a_bad_key_in_a_source_names_its_position(tmp_path):
    p = tmp_path / "edge.toml"
    p.write_text('[[sources]]\ntype = "serial"\n[[sources]]\nprot = "x"\n')
    with pytest.raises(ConfigError, match=r"sources\[1\]: unknown key 'prot'"):
        load_config(p)


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


def test_config_check_warns_while_sync_is_on_and_the_patient_is_the_placeholder(tmp_path):
    from click.testing import CliRunner

    from edge.cli.main import cli

    path = tmp_path / "edge.toml"
    run = CliRunner().invoke
    path.write_text('[sync]\nurl = "https://fhir.example.org/r4"\n')
    r = run(cli, ["config", "check", str(path)])
    assert r.exit_code == 0 and "(1 warning(s))" in r.stdout
    assert "warning: fhir.patient_identifier_value is still the placeholder" in r.stderr
    path.write_text('[sync]\nurl = "https://fhir.example.org/r4"\n'
                    '[fhir]\npatient_identifier_value = "p-42"\n')
    r = run(cli, ["config", "check", str(path)])
    assert r.exit_code == 0 and r.stdout.strip().endswith(": ok") and r.stderr == ""
    path.write_text('[fhir]\npatient_link = "maybe"\n')
    r = run(cli, ["config", "check", str(path)])
    assert r.exit_code == 1 and "fhir.patient_link: expected one of create, existing" in r.output
