"""Every episode kind the gateway emits has its standard codes, and docs/ lists exactly them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edge.config import FhirConfig
from edge.sync.codes import (
    EPISODE_CODES,
    MDC,
    SNOMED,
    VITAL_CODED_KINDS,
    mdc_code,
    standard_codings,
)
from edge.sync.fhir import episode_observation, to_json
from edge.types import Episode, Priority, StreamKey

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "fhir-episode-codes.md"
_RATE_FUNCS = ("_episode", "_rate_rule", "state", "AlarmPolicy", "_RateEpisode")


def emitted_kinds() -> set[str]:
    """Episode kinds named in edge/detect: kind= arguments, rule names, baseline names."""
    kinds: set[str | None] = set()

    def const(n: ast.AST) -> str | None:
        return n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None

    def firsts(n: ast.AST) -> list[str | None]:
        if isinstance(n, ast.Tuple) and n.elts:
            return [const(n.elts[0])]
        if isinstance(n, ast.IfExp):
            return firsts(n.body) + firsts(n.orelse)
        return []

    for path in sorted((ROOT / "edge" / "detect").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "kind":
                kinds.add(const(node.value))
            elif isinstance(node, ast.FunctionDef):
                args = node.args.args[-len(node.args.defaults):] if node.args.defaults else []
                kinds.update(const(d) for a, d in zip(args, node.args.defaults, strict=True)
                             if a.arg == "kind")
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in _RATE_FUNCS and node.args:
                    kinds.add(const(node.args[0]))
            elif isinstance(node, ast.Assign):
                t = node.targets[0]
                if isinstance(t, ast.Name) and t.id.endswith("_EPISODE"):
                    kinds.add(const(node.value))
                if isinstance(t, ast.Name) and t.id == "TRACKED" and isinstance(node.value,
                                                                                ast.Dict):
                    kinds.update(const(v) for v in node.value.values)
                if isinstance(t, ast.Tuple) and t.elts and getattr(t.elts[0], "id", "") == "kind":
                    kinds.update(firsts(node.value))
    return {k for k in kinds if k}


def doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| `([a-z0-9_]+)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_every_kind_the_detectors_emit_has_a_row_in_the_code_table():
    kinds = emitted_kinds()
    assert {"atrial_fibrillation", "ventricular_run", "bradycardia", "pause",
            "hr_deviation", "news2_escalation"} <= kinds  # the scan finds them
    assert kinds - set(EPISODE_CODES) == set()
    assert set(EPISODE_CODES) - kinds == set()  # no row for a kind nobody emits


def test_every_kind_has_a_snomed_or_mdc_code_unless_the_table_says_why_not():
    for kind, c in EPISODE_CODES.items():
        if kind in VITAL_CODED_KINDS:
            assert c.snomed is None and c.mdc is None and c.note, kind
        else:
            assert c.snomed is not None or c.mdc is not None, kind
        if c.mdc is None or c.snomed is None:
            assert c.note, f"{kind}: a missing code needs its reason"


def test_the_docs_table_lists_exactly_the_codes_the_gateway_emits():
    rows = doc_rows()
    assert list(rows) == list(EPISODE_CODES)
    for kind, (sct, sct_display, mdc, mdc_ref, _source, _note) in rows.items():
        c = EPISODE_CODES[kind]
        assert sct == (c.snomed.code if c.snomed else "–"), kind
        assert sct_display == (c.snomed.display if c.snomed else "–"), kind
        assert mdc == (c.mdc.code if c.mdc else "–"), kind
        if c.mdc:
            part, term = (int(x) for x in c.mdc_ref.split("::"))
            assert mdc == mdc_code(part, term) and c.mdc.display in mdc_ref, kind


def test_the_codes_reach_the_observation_the_backend_receives():
    cfg = FhirConfig()
    for kind in EPISODE_CODES:
        if kind == "news2_escalation":
            continue  # mapped as NEWS2 (tests/test_fhir_mapping.py)
        e = Episode(kind=kind, key=StreamKey("w", "ecg"), onset=1.7e9, offset=1.7e9 + 30,
                    onset_index=0, offset_index=1, priority=Priority.WARNING,
                    detector="d", detector_version="1")
        coding = to_json(episode_observation(e, 1, cfg))["code"]["coding"]
        std = [(c["system"], c["code"]) for c in coding if c["system"] in (SNOMED, MDC)]
        assert std == [(c["system"], c["code"]) for c in standard_codings(kind)], kind
        assert coding[-1] == {"system": cfg.code_system, "code": kind,
                              "display": f"{kind.replace('_', ' ')} episode"}
