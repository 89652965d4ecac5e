"""`edge doctor` says what is wrong, one line per check, with the fix."""

from __future__ import annotations

import json
import socket

from click.testing import CliRunner

from edge.cli.main import cli


def _doctor(tmp_path, toml: str):
    p = tmp_path / "edge.toml"
    p.write_text(f'[store]\npath = "{tmp_path / "o.sqlite3"}"\n' + toml)
    res = CliRunner().invoke(cli, ["doctor", "--config", str(p), "--json"])
    return res.exit_code, {c["name"]: c for c in json.loads(res.output)}


def test_a_missing_serial_port_fails_with_the_fix(tmp_path):
    code, checks = _doctor(tmp_path, '[[sources]]\ntype = "serial"\nport = "/dev/ttyNOPE9"\n')
    assert code == 1
    assert checks["serial"]["status"] == "fail"
    assert "/dev/ttyNOPE9 does not exist" in checks["serial"]["detail"]
    assert "dialout" in checks["serial"]["fix"]


def test_an_unreachable_backend_fails_and_a_listening_one_passes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    _, checks = _doctor(tmp_path, f'[sync]\nurl = "http://127.0.0.1:{closed_port}/fhir"\n')
    assert checks["backend"]["status"] == "fail" and "cannot reach" in checks["backend"]["detail"]
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        _, checks = _doctor(tmp_path, f'[sync]\nurl = "http://127.0.0.1:{port}/fhir"\n')
    assert checks["backend"]["status"] == "ok"


def test_every_check_reports_and_disk_and_python_pass_here(tmp_path):
    _, checks = _doctor(tmp_path, "")
    assert set(checks) == {"python", "packages", "inference", "models", "bluetooth", "serial",
                           "clock", "disk", "backend"}
    assert checks["python"]["status"] == "ok"
    assert checks["disk"]["status"] == "ok"
    assert checks["packages"]["status"] == "ok"


def test_the_configured_models_are_checked_against_their_golden_rows(tmp_path):
    import shutil
    from pathlib import Path

    import numpy as np

    from edge.inference.manifest import sha256_of

    models = Path(__file__).resolve().parent.parent / "models"
    _, checks = _doctor(tmp_path, "")
    assert checks["models"]["status"] == "ok"
    assert "beat_nsv" in checks["models"]["detail"] and "af_rr" in checks["models"]["detail"]
    # a model whose outputs on this CPU no longer match its golden decisions
    local = tmp_path / "models"
    shutil.copytree(models / "af_rr", local / "af_rr")
    with np.load(local / "af_rr" / "golden.npz") as z:
        g = {k: z[k] for k in z.files}
    g["decisions"] = 1 - g["decisions"]
    np.savez_compressed(local / "af_rr" / "golden.npz", **g)
    man = json.loads((local / "af_rr" / "manifest.json").read_text())
    man["golden"]["sha256"] = sha256_of(local / "af_rr" / "golden.npz")
    (local / "af_rr" / "manifest.json").write_text(json.dumps(man))
    code, checks = _doctor(tmp_path, f'[inference]\nmodels_dir = "{local}"\nbeat_model = ""\n')
    assert code == 1 and checks["models"]["status"] == "fail"
    assert "golden decisions match the fp32 reference" in checks["models"]["detail"]
    assert "precision" in checks["models"]["fix"]
