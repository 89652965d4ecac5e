"""Recordings on disk (WFDB records, CSV files, vitals-edge traces) as one type.

WFDB is read with the ``wfdb`` package (MIT-LCP), never by hand: it knows
every sample format (212, 16, FLAC, multi-segment) and the annotation format.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import numpy as np

from edge.errors import RecordFormatError
from edge.extras import require
from edge.types import ChannelSpec


def data_dir() -> Path:
    """The folder of real recordings: ``$EDGE_DATA_DIR``, else ``shared/data`` beside the
    source checkout, else beside the working directory (the first that exists; the
    checkout's when neither does). The one place tools and benchmarks look for it."""
    env = os.environ.get("EDGE_DATA_DIR")
    if env:
        return Path(env)
    candidates = [base.parent / "shared" / "data"
                  for base in (Path(__file__).resolve().parents[2], Path.cwd())]
    return next((c for c in candidates if c.is_dir()), candidates[0])

#: ECG lead names preferred when a record has several channels (MIT-BIH: MLII first).
ECG_LEADS = ("MLII", "II", "ECG", "I", "V", "V1", "V2", "V5", "MCL1", "III", "AVR", "ECG1")


@dataclass
class Recording:
    """A signal loaded in memory: samples in physical units, and optional labels."""

    name: str
    fs: float
    channels: tuple[ChannelSpec, ...]
    signal: np.ndarray  # (n_samples, n_channels), float32
    ann_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ann_symbol: list[str] = field(default_factory=list)
    ann_aux: list[str] = field(default_factory=list)
    start_wall: float | None = None  # UTC epoch seconds of the first sample, if known

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


def _pick_channel(names: list[str], wanted: str | None, where: str) -> int:
    if wanted is not None:
        if wanted.isdigit() and int(wanted) < len(names):
            return int(wanted)
        for i, n in enumerate(names):
            if n.upper() == wanted.upper():
                return i
        raise RecordFormatError(f"{where}: no channel {wanted!r} (has {names})")
    upper = [n.upper() for n in names]
    for lead in ECG_LEADS:
        if lead in upper:
            return upper.index(lead)
    return 0


def load_wfdb(path: str | Path, channel: str | None = None,
              annotator: str | None = "atr") -> Recording:
    """Load one channel of a WFDB record (``path`` without extension).

    ``channel`` is a name or index; by default the first ECG lead found.
    Annotations come from ``annotator`` when that file exists.
    """
    # imported here: heavy (pandas) and in the 'tools' extra, not on a gateway
    wfdb = require("wfdb", "tools", "reading WFDB records")

    p = Path(path)
    if p.suffix in (".hea", ".dat", ".atr"):
        p = p.with_suffix("")
    if not p.with_suffix(".hea").exists():
        raise RecordFormatError(f"{p}: no WFDB header {p.name}.hea")
    try:
        header = wfdb.rdheader(str(p))
        idx = _pick_channel(list(header.sig_name or []), channel, str(p))
        rec = wfdb.rdrecord(str(p), channels=[idx])
    except RecordFormatError:
        raise
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on bad files
        raise RecordFormatError(f"{p}: cannot read WFDB record ({exc})") from exc
    sig = np.asarray(rec.p_signal, dtype=np.float32).reshape(-1, 1)
    unit = (rec.units or ["mV"])[0] or "mV"
    start_wall = None
    if rec.base_datetime is not None:
        start_wall = rec.base_datetime.replace(tzinfo=UTC).timestamp()
    out = Recording(p.name, float(rec.fs), (ChannelSpec(rec.sig_name[0], unit),), sig,
                    start_wall=start_wall)
    if annotator and p.with_suffix("." + annotator).exists():
        try:
            ann = wfdb.rdann(str(p), annotator)
        except Exception as exc:
            raise RecordFormatError(f"{p}.{annotator}: cannot read annotations ({exc})") from exc
        out.ann_index = np.asarray(ann.sample, dtype=np.int64)
        out.ann_symbol = list(ann.symbol)
        out.ann_aux = [(a or "").rstrip("\x00") for a in (ann.aux_note or [""] * len(ann.sample))]
    return out


def load_csv(path: str | Path, fs: float, column: str | None = None,
             unit: str = "mV") -> Recording:
    """Load one numeric column of a CSV file (with or without a header row)."""
    p = Path(path)
    try:
        with open(p, newline="") as fh:
            first = fh.readline()
    except OSError as exc:
        raise RecordFormatError(f"{p}: cannot open ({exc.strerror})") from exc
    cells = [c.strip() for c in first.split(",")]
    has_header = any(_not_number(c) for c in cells)
    names = cells if has_header else [f"col{i}" for i in range(len(cells))]
    if column is None:
        idx = _pick_channel(names, None, str(p)) if has_header else 0
        if has_header and names[idx].lower().startswith("time") and len(names) > 1:
            idx = 1
    else:
        idx = _pick_channel(names, column, str(p))
    try:
        data = np.loadtxt(p, delimiter=",", skiprows=1 if has_header else 0, usecols=[idx],
                          dtype=np.float64, ndmin=1)
    except ValueError as exc:
        raise RecordFormatError(f"{p}: column {names[idx]!r} is not numeric ({exc})") from exc
    name = names[idx] if has_header else "ECG"
    return Recording(p.stem, float(fs), (ChannelSpec(name, unit),),
                     data.astype(np.float32).reshape(-1, 1))


def load_beat_csv(path: str | Path) -> np.ndarray:
    """Reference beat positions stored one sample index per line."""
    with open(path, newline="") as fh:
        values = [float(row[0]) for row in csv.reader(fh) if row and not _not_number(row[0])]
    return np.asarray(values, dtype=np.int64)


def _not_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False
