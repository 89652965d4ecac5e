"""What processor this runs on, as far as int8 kernels care (for reports, not decisions)."""

from __future__ import annotations

import platform
from pathlib import Path

#: Instruction-set features that change which int8 GEMM kernel a runtime picks.
INT8_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8",  # x86-64
                 "asimd", "asimddp", "i8mm", "sve")  # arm64 (dot product, int8 matmul)


def cpu_summary(cpuinfo: str | None = None) -> dict[str, str]:
    """``{"arch", "cpu", "int8_features"}`` from ``/proc/cpuinfo`` (or the text given).

    Under qemu-user, ``/proc/cpuinfo`` may describe the host rather than the
    emulated CPU: reports made under emulation name the emulated CPU themselves.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    name, flags = "", set[str]()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    feats = [f for f in INT8_FEATURES if f in flags]
    arch = platform.machine()
    return {"arch": arch, "cpu": f"{name or 'unknown CPU'} ({arch})",
            "int8_features": " ".join(feats) or "none reported"}
