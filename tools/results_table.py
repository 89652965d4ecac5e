#!/usr/bin/env python3
"""Regenerate the README's results table from the recordings in EDGE_DATA_DIR.

Runs every `edge evaluate` task through the live pipeline on the datasets in
``../shared/data`` and prints a Markdown table; ``--write-readme`` replaces
the block between ``<!-- results:start -->`` and ``<!-- results:end -->`` in
README.md. One command, so the table never drifts from the code:

    python tools/results_table.py --write-readme
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from edge.config import EdgeConfig
from edge.evaluate.af import evaluate_af
from edge.evaluate.alarms import false_alarms
from edge.evaluate.beat_classes import evaluate_beat_classes
from edge.evaluate.ppg import evaluate_ppg_hr
from edge.evaluate.pvc import evaluate_pvc
from edge.evaluate.qrs import evaluate_qrs
from edge.trace.recordings import data_dir

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
CPSC = ["data_21_7", "data_21_8", "data_21_9", "data_84_1", "data_84_2", "data_84_3",
        "data_101_6", "data_101_8", "data_101_9"]
#: MIT-BIH DS1 (training side of the inter-patient split; never DS2) by reference rhythm.
DS1_AF = ["201", "203"]
DS1_NO_AF = ["101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
             "124", "205", "207", "208", "209", "215", "220", "223", "230"]
#: No reference run of 3 or more V beats, no (VT / (IVR / (VFL, no AF (SVTA remains in
#: 114, 209, 220: a tachycardia alarm there may be true).
DS1_NO_VRUN_NO_AF = ["101", "108", "109", "112", "114", "115", "116", "118", "119", "122",
                     "208", "209", "220", "230"]


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def build(data: Path) -> str:
    cfg = EdgeConfig()
    mitdb = [str(data / "mitdb" / r) for r in ("100", "208")]
    cpsc = [str(data / "cpsc2021" / r) for r in CPSC]
    rows: list[str] = []

    def add(task: str, dataset: str, n: int, res: dict, metric: str) -> None:
        shown = {}
        for k, v in res["total"].items():
            if k in ("se", "ppv", "duration_se", "duration_ppv", "se_min_duration"):
                shown[k] = _pct(v)
            elif isinstance(v, float):
                shown[k] = f"{v:.2f}"
            else:
                shown[k] = v
        rows.append(f"| {task} | {dataset} | {n} | {metric.format(**shown)} |")

    qrs_fmt = "Se {se} %, +P {ppv} % (TP {tp}, FP {fp}, FN {fn})"
    add("QRS", "MIT-BIH 100, 208", 2, evaluate_qrs(mitdb, cfg), qrs_fmt)
    add("QRS", "CPSC 2021 (9 records, 3 subjects)", 9, evaluate_qrs(cpsc, cfg), qrs_fmt)
    af_fmt = ("episode Se {se} %, +P {ppv} %; duration Se {duration_se} %, +P {duration_ppv} %"
              " ({ref_episodes} reference episodes; Se {se_min_duration} % over the"
              " {ref_episodes_min_duration} lasting >= 30 s, the shortest AF reported)")
    add("AF", "CPSC 2021 (9 records)", 9, evaluate_af(cpsc, cfg), af_fmt)
    add("AF (false positives)", "MIT-BIH 100, 208 (no AF)", 2, evaluate_af(mitdb, cfg),
        "{det_episodes} AF episodes detected, {det_af_s} s")
    ds1 = data / "mitdb-ds1"
    add("AF", "MIT-BIH DS1 201, 203 (AF, flutter, PVCs)", 2,
        evaluate_af([str(ds1 / r) for r in DS1_AF], cfg), af_fmt)
    add("AF (false positives)", f"MIT-BIH DS1, the {len(DS1_NO_AF)} records without AF "
        "(bigeminy, VT runs, pauses, SVTA)", len(DS1_NO_AF),
        evaluate_af([str(ds1 / r) for r in DS1_NO_AF], cfg),
        "{det_episodes} AF episodes detected, {det_af_s} s; {bursts} af_burst findings (info)")
    pvc_fmt = "Se {se} %, +P {ppv} % (TP {tp}, FP {fp}, FN {fn})"
    add("PVC", "MIT-BIH 100, 208 (208: a DS1 training record of the beat model)", 2,
        evaluate_pvc(mitdb, cfg), pvc_fmt)

    def classes(res: dict, keys: tuple[str, ...]) -> str:
        g = res["gross"]
        return "; ".join(f"{'QRS' if k == 'qrs' else k} Se {_pct(g[k]['se'])} %, "
                         f"+P {_pct(g[k]['ppv'])} % (TP {g[k]['tp']}, FP {g[k]['fp']}, "
                         f"FN {g[k]['fn']})" for k in keys)

    res = evaluate_beat_classes([mitdb[0]], cfg)
    rows.append("| beat classes (EC57) | MIT-BIH 100 (DS2: test only, never trained or tuned "
                f"on) | 1 | {classes(res, ('N', 'S', 'V'))} |")
    paced_recs = [str(data / "mitdb-paced" / r) for r in ("102", "104", "107", "217")]
    paced_cfg = replace(cfg, beat_classifier=replace(cfg.beat_classifier, paced=True))
    res = evaluate_beat_classes(paced_recs, paced_cfg)
    q_as_v = res["confusion"]["counts"][4][2]
    rows.append("| paced (`paced = true`) | MIT-BIH 102, 104, 107, 217 (pacemaker) | 4 | "
                f"{classes(res, ('qrs', 'V'))}; paced or fusion beats labelled V: {q_as_v} |")
    add("PVC", "CPSC 2021 (9 records)", 9, evaluate_pvc(cpsc, cfg), pvc_fmt)
    spc = [p for folder in ("Training_data", "Extra_TrainingData")
           for p in sorted((data / "ieee-spc2015" / folder).glob("DATA_*.mat"))
           if "BPM" not in p.name]
    add("PPG heart rate", "IEEE SPC 2015 (wrist, running)", len(spc),
        evaluate_ppg_hr([str(p) for p in spc], None, cfg.ppg), "MAE {mae_bpm} bpm")
    clean = [str(data / "mitdb" / "100")] + [str(data / "cpsc2021" / r)
                                              for r in ("data_21_7", "data_21_8", "data_21_9")]
    add("false alarms", "sinus: MIT-BIH 100, CPSC 21_7/8/9", 4, false_alarms(clean, cfg),
        "{alarms} alarms in {hours} h = {alarms_per_hour} per hour")
    edb = [str(p) for p in sorted((data / "edb-excerpts-csv").glob("*.csv"))]
    add("false alarms", "European ST-T excerpts (CSV, 250 Hz)", len(edb),
        false_alarms(edb, cfg, csv_fs=250.0),
        "{alarms} alarms in {hours} h = {alarms_per_hour} per hour")
    nst = [str(data / "nstdb-118e-csv" / f"118e{snr}.csv") for snr in ("24", "12", "06", "00")]
    add("false alarms (noise)", "NSTDB 118e24/12/06/00 (SNR 24 to 0 dB)", len(nst),
        false_alarms(nst, cfg, csv_fs=360.0),
        "{alarms} alarms in {hours} h = {alarms_per_hour} per hour")
    quiet = [str(ds1 / r) for r in DS1_NO_VRUN_NO_AF]
    add("false alarms", f"MIT-BIH DS1 without ventricular runs or AF ({len(quiet)} records)",
        len(quiet), false_alarms(quiet, cfg),
        "{alarms} alarms in {hours} h = {alarms_per_hour} per hour")
    icu = [str(data / "physionet-icu-samples" / r) for r in ("v102s", "a103l")]
    add("false alarms (ICU)", "CinC 2015 v102s, a103l (alarms a bedside monitor raised "
        "falsely: VT, asystole)", len(icu), false_alarms(icu, cfg),
        "{alarms} alarms in {hours} h = {alarms_per_hour} per hour")
    head = ["| task | recordings | n | result |", "|---|---|---|---|"]
    stamp = time.strftime("%Y-%m-%d")
    import onnxruntime

    from edge.inference import load_model
    from edge.inference.cpu import cpu_summary

    ic = cfg.inference
    used = ", ".join(f"{m.name} {m.format}/{m.precision}" for m in
                     (load_model(ROOT / "models" / n, ic.backend, 1, ic.precision)
                      for n in (ic.beat_model, ic.af_model) if n))
    cpu = cpu_summary()
    note = (f"Generated {stamp} by `python tools/results_table.py --write-readme` "
            "(through the live pipeline, default configuration, shipped models: "
            f"{used}; onnxruntime {onnxruntime.__version__}; on {cpu['cpu']}, int8 "
            f"features {cpu['int8_features']}). Every model file decides identically on "
            "AVX2-only x86-64, AVX-512 VNNI x86-64 and arm64 (`tools/check_cpus.sh`), so "
            "the figures do not depend on the CPU.")
    return "\n".join([note, "", *head, *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path,
                    default=data_dir())
    ap.add_argument("--write-readme", action="store_true", help="Update README.md in place.")
    args = ap.parse_args()
    table = build(args.data_dir)
    print(table)
    if args.write_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        if START not in text or END not in text:
            raise SystemExit(f"README.md has no {START} ... {END} block")
        before, rest = text.split(START, 1)
        _, after = rest.split(END, 1)
        readme.write_text(f"{before}{START}\n{table}\n{END}{after}")
        print("README.md updated")


if __name__ == "__main__":
    main()
