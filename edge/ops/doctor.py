"""``edge doctor``: check the machine before a clinical engineer leaves it.

One :class:`Check` per concern, each a small function that returns its
verdict and, when something is wrong, the fix. Checks only look: they
change nothing on the machine.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from edge.config import EdgeConfig


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warn", "fail", "skip"
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or "") + (out.stderr or "")


def check_python(cfg: EdgeConfig) -> Check:
    v = sys.version_info
    if v < (3, 11):
        return Check("python", "fail", f"Python {v.major}.{v.minor}",
                     "install Python 3.11 or newer (Raspberry Pi OS Bookworm ships 3.11)")
    return Check("python", "ok", f"Python {v.major}.{v.minor}.{v.micro} on {os.uname().machine}")


def check_packages(cfg: EdgeConfig) -> Check:
    wanted = ["numpy", "scipy", "click", "onnxruntime", "bleak", "pyserial",
              "prometheus-client"]
    found, missing = [], []
    for name in wanted:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return Check("packages", "fail", "missing: " + ", ".join(missing),
                     "reinstall: .venv/bin/pip install /opt/vitals-edge")
    return Check("packages", "ok", ", ".join(found))


def check_inference(cfg: EdgeConfig) -> Check:
    runtimes = []
    for mod, label in (("onnxruntime", "onnxruntime"), ("ai_edge_litert.interpreter", "LiteRT"),
                       ("tflite_runtime.interpreter", "tflite-runtime")):
        try:
            importlib.import_module(mod)
            runtimes.append(label)
        except Exception:  # noqa: BLE001 - an import can fail in many ways on a Pi
            continue
    if "onnxruntime" not in runtimes:
        return Check("inference", "fail", "onnxruntime does not import",
                     "pip install onnxruntime (aarch64 wheels exist for Python 3.11)")
    if len(runtimes) == 1:
        return Check("inference", "warn", "onnxruntime only; no TFLite interpreter",
                     "pip install ai-edge-litert (or tflite-runtime) for .tflite models")
    return Check("inference", "ok", ", ".join(runtimes))


def check_models(cfg: EdgeConfig) -> Check:
    """The configured models decide on this CPU as the fp32 reference does (golden rows)."""
    from edge.errors import ModelError
    from edge.inference import default_models_dir, load_model
    from edge.inference.golden import check_model

    ic = cfg.inference
    root = Path(ic.models_dir) if ic.models_dir else default_models_dir()
    names = [n for n in (ic.beat_model, ic.af_model) if n]
    if not names:
        return Check("models", "skip", "no model configured")
    done, problems = [], []
    for name in names:
        try:
            m = load_model(root / name, ic.backend, ic.threads, ic.precision)
            res = check_model(m)
        except ModelError as exc:
            problems.append(str(exc))
            continue
        if res is None:
            problems.append(f"{name}: its manifest has no golden rows to check against")
        elif not res.ok:
            problems.append(res.reason(f"{name} {m.format}/{m.precision}"))
        else:
            done.append(f"{name} {m.format}/{m.precision} {res.agreement:.1%} of {res.rows}")
    if problems:
        return Check("models", "fail", "; ".join(problems),
                     "run `edge model verify`; set [inference] precision = \"fp32\" or "
                     "reinstall the models")
    return Check("models", "ok", "golden decisions equal: " + ", ".join(done))


def check_bluez(cfg: EdgeConfig) -> Check:
    if not any(s.type == "ble" for s in cfg.sources):
        return Check("bluetooth", "skip", "no BLE source configured")
    out = _run(["bluetoothctl", "--version"])
    if out is None:
        return Check("bluetooth", "fail", "bluetoothctl not found (BlueZ missing)",
                     "sudo apt install bluez")
    version = out.strip().split()[-1] if out.strip() else "?"
    rfkill = _rfkill_blocked()
    if rfkill:
        return Check("bluetooth", "fail", f"BlueZ {version}; adapter blocked by rfkill",
                     "sudo rfkill unblock bluetooth")
    show = _run(["bluetoothctl", "show"]) or ""
    if "Powered: yes" not in show:
        return Check("bluetooth", "fail", f"BlueZ {version}; no powered adapter",
                     "bluetoothctl power on (and check `hciconfig`/dmesg for the adapter)")
    return Check("bluetooth", "ok", f"BlueZ {version}; adapter powered")


def _rfkill_blocked() -> bool:
    for d in Path("/sys/class/rfkill").glob("rfkill*"):
        try:
            if (d / "type").read_text().strip() == "bluetooth" and (
                    (d / "soft").read_text().strip() == "1"
                    or (d / "hard").read_text().strip() == "1"):
                return True
        except OSError:
            continue
    return False


def check_serial(cfg: EdgeConfig) -> Check:
    ports = [s.port for s in cfg.sources if s.type == "serial"]
    if not ports:
        return Check("serial", "skip", "no serial source configured")
    problems = []
    for port in ports:
        if port.startswith("usb:"):
            continue  # resolved at run time by USB identity
        if not os.path.exists(port):
            problems.append(f"{port} does not exist")
        elif not os.access(port, os.R_OK | os.W_OK):
            problems.append(f"{port} not readable/writable by this user")
    if problems:
        return Check("serial", "fail", "; ".join(problems),
                     "plug the device in; add the service user to 'dialout' "
                     "(sudo usermod -aG dialout vitals-edge)")
    return Check("serial", "ok", f"{len(ports)} port(s) accessible")


def check_clock(cfg: EdgeConfig) -> Check:
    out = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if out is None:
        return Check("clock", "warn", "cannot ask timedatectl whether the clock is synchronised",
                     "make sure NTP runs (systemd-timesyncd): episode times come from this clock")
    if out.strip().splitlines()[:1] == ["yes"]:
        return Check("clock", "ok", "system clock synchronised (NTP)")
    return Check("clock", "fail", "system clock not synchronised",
                 "sudo timedatectl set-ntp true; check network access to an NTP server")


def check_disk(cfg: EdgeConfig, min_free_mb: float = 500.0) -> Check:
    directory = Path(cfg.store.path).resolve().parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    usage = shutil.disk_usage(directory)
    free_mb = usage.free / 1e6
    detail = f"{free_mb:.0f} MB free at {directory}"
    if free_mb < min_free_mb:
        return Check("disk", "fail", detail,
                     "free space or move [store] path; the outbox needs room for outages")
    if not os.access(directory, os.W_OK):
        return Check("disk", "fail", detail + " (not writable)",
                     "run as the service user, or fix the StateDirectory ownership")
    return Check("disk", "ok", detail)


def check_backend(cfg: EdgeConfig, timeout: float = 5.0) -> Check:
    url = getattr(getattr(cfg, "sync", None), "url", "")
    if not url:
        return Check("backend", "skip", "no [sync] url configured: events stay in the outbox")
    u = urlparse(url)
    host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if u.scheme == "https":
                tls = getattr(cfg, "tls", None)
                ctx = ssl.create_default_context(cafile=getattr(tls, "ca_bundle", "") or None)
                if tls is not None and not tls.verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                with ctx.wrap_socket(sock, server_hostname=host):
                    pass
    except ssl.SSLError as exc:
        return Check("backend", "fail", f"TLS to {host}:{port} failed ({exc.reason})",
                     "check [tls] ca_bundle and the server certificate")
    except OSError as exc:
        return Check("backend", "fail", f"cannot reach {host}:{port} ({exc.strerror or exc})",
                     "check the network and [sync] url")
    problems = []
    auth = getattr(cfg, "auth", None)
    for attr in ("token_file", "private_key_file"):
        path = getattr(auth, attr, "") if auth is not None else ""
        if path and not os.access(path, os.R_OK):
            problems.append(f"{attr} {path} not readable")
        elif path and os.stat(path).st_mode & 0o077:
            problems.append(f"{attr} is readable by others (chmod 600)")
    if problems:
        return Check("backend", "fail", f"{host}:{port} reachable; " + "; ".join(problems),
                     "fix the credential files (owned by the service user, mode 0600)")
    return Check("backend", "ok", f"{host}:{port} reachable" +
                 (" (TLS ok)" if u.scheme == "https" else " (plain HTTP: test backends only)"))


CHECKS: list[Callable[[EdgeConfig], Check]] = [
    check_python, check_packages, check_inference, check_models, check_bluez, check_serial,
    check_clock, check_disk, check_backend,
]


def run_checks(cfg: EdgeConfig) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(cfg))
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            name = re.sub(r"^check_", "", check.__name__)
            results.append(Check(name, "fail", f"check crashed: {type(exc).__name__}: {exc}"))
    return results
