#!/usr/bin/env python3
"""Build the demo trace shipped in the package from MIT-BIH record 208.

The demo streams five minutes of MIT-BIH Arrhythmia Database record 208,
lead MLII (samples 422820 to 530819, the excerpt SciPy also shipped as
``scipy.misc.electrocardiogram``), with its reference beat and rhythm labels,
written in the vitals-edge trace format. Record 208 is rich in PVCs,
couplets and fusion beats: a realistic, hard stream.

Source and licence: Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia
Database. IEEE Eng in Med and Biol 20(3):45-50 (2001); Goldberger AL et al.,
PhysioBank, PhysioToolkit, and PhysioNet, Circulation 101(23):e215-e220
(2000). Open Data Commons Attribution License v1.0 (ODC-BY 1.0).

Usage: python tools/make_demo_trace.py [--data-dir ../shared/data] [--out edge/demo_data/...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edge.trace.format import Annotation, TraceWriter
from edge.trace.recordings import data_dir, load_wfdb
from edge.types import Block, StreamKey

START, STOP = 422820, 530820
BLOCK = 18  # 0.05 s at 360 Hz: one BLE notification's worth; a damaged record costs 50 ms


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path,
                    default=data_dir())
    ap.add_argument("--out", type=Path,
                    default=here / "edge" / "demo_data" / "mitdb208-5min.vetrace")
    args = ap.parse_args()

    rec = load_wfdb(args.data_dir / "mitdb" / "208", channel="MLII")
    sig = rec.signal[START:STOP]
    key = StreamKey("demo-wearable", "ecg")
    meta = {
        "title": "MIT-BIH Arrhythmia Database record 208, lead MLII, 5 min excerpt",
        "source": "https://physionet.org/content/mitdb/1.0.0/ (record 208, samples 422820-530819)",
        "licence": "ODC-BY 1.0",
        "citation": "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. "
                    "IEEE Eng Med Biol 20(3):45-50 (2001)",
        "start_wall": 0.0,
    }
    if args.out.exists():
        args.out.unlink()
    with TraceWriter(args.out, meta) as tw:
        tw.declare(key, rec.fs, rec.channels)
        keep = (rec.ann_index >= START) & (rec.ann_index < STOP)
        for i, sym, aux in zip(rec.ann_index[keep], np.asarray(rec.ann_symbol)[keep],
                               np.asarray(rec.ann_aux)[keep], strict=True):
            tw.annotate(Annotation(key, int(i) - START, str(sym), str(aux)))
        for seq, first in enumerate(range(0, sig.shape[0], BLOCK)):
            data = sig[first:first + BLOCK]
            tw.write(Block(key, rec.channels, rec.fs, seq, first, first / rec.fs,
                           (first + data.shape[0]) / rec.fs, data))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
