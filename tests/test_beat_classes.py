"""EC57 beat-class report (`edge evaluate --task beats`): counting rules and the CLI."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from edge.cli.evaluate import evaluate
from edge.evaluate.beat_classes import LABELS, aami_class, score_labels

FS = 360.0


def test_aami_classes_of_the_wfdb_symbols():
    assert [aami_class(s) for s in "NLRej"] == ["N"] * 5
    assert [aami_class(s) for s in "AaJS"] == ["S"] * 4
    assert [aami_class(s) for s in "VE"] == ["V"] * 2
    assert aami_class("F") == "F"
    assert [aami_class(s) for s in "/fQ"] == ["Q"] * 3


def test_class_counts_follow_ec57():
    ref = np.array([100, 500, 900, 1300, 1700, 2100])
    ref_class = ["N", "V", "S", "V", "Q", "F"]
    # 1300 (V) is missed; 2500 is a false detection labelled V; 1700 (paced, Q) labelled V
    det = np.array([105, 495, 910, 1690, 2100, 2500])
    det_label = ["N", "V", "N", "V", "V", "V"]
    counts, conf = score_labels(ref, ref_class, det, det_label, FS)
    assert (counts["qrs"].tp, counts["qrs"].fp, counts["qrs"].fn) == (5, 1, 1)
    v = counts["V"]
    # TP: 500. FN: 1300 (missed). FP: 2100 (F labelled V) and 2500 (no beat); the Q
    # reference beat labelled V is not counted (EC57 leaves Q out of the class figures).
    assert (v.tp, v.fp, v.fn) == (1, 2, 1)
    s = counts["S"]
    assert (s.tp, s.fp, s.fn) == (0, 0, 1)
    assert counts["F"].fn == 1 and counts["N"].tp == 1
    n = len(LABELS)
    assert conf[LABELS.index("V"), n] == 1  # a V beat missed
    assert conf[n, LABELS.index("V")] == 1  # a false detection labelled V
    assert conf.sum() == len(ref) + 1  # every reference beat once, plus the false detection


def test_unknown_labels_count_as_unclassified():
    counts, conf = score_labels(np.array([100]), ["N"], np.array([100]), ["?"], FS)
    assert counts["N"].fn == 1 and conf[0, LABELS.index("Q")] == 1


def test_cli_reports_every_class_per_record_and_gross(data_dir, tmp_path):
    rec = str(data_dir / "mitdb-ds1" / "119")
    r = CliRunner().invoke(evaluate, ["--task", "beats", rec, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for part in (out["gross"], out["records"][0]):
        for k in ("qrs", "N", "S", "V", "F"):
            assert set(part[k]) >= {"se", "ppv", "tp", "fp", "fn"}
    assert out["records"][0]["record"] == "119"
    counts = np.array(out["confusion"]["counts"])
    assert counts.shape == (len(LABELS) + 1, len(LABELS) + 1)
    # the reference beats of the record, each once (rows N..Q), equal the EC57 QRS figures
    q = out["gross"]["qrs"]
    assert counts[:-1].sum() == q["tp"] + q["fn"]
    r = CliRunner().invoke(evaluate, ["--task", "beats", rec, "--plot", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "gross" in r.output and "confusion" in r.output
    assert (tmp_path / "beats-confusion.png").stat().st_size > 1000


def test_cli_refuses_a_record_without_annotations(data_dir):
    r = CliRunner().invoke(evaluate, ["--task", "beats",
                                      str(data_dir / "mitdb-signal-only" / "106")])
    assert r.exit_code != 0 and "annotations" in r.output
