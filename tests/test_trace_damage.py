"""Damaged traces: the reader reads past damage, says what was lost, and never replays
nothing in silence. The traces are real: the shipped MIT-BIH 208 demo trace (written
by the first recorder) and the same signal re-recorded by today's writer."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.app import run_pipeline
from edge.cli.main import cli
from edge.config import EdgeConfig, SourceConfig, TraceConfig
from edge.daemon import build_source
from edge.errors import TraceError
from edge.sim.trace_damage import (
    KINDS,
    expected_loss,
    judge,
    mutate,
    parse,
    rerecord,
    window,
)
from edge.sources.open import open_replay
from edge.sources.replay import TraceSource
from edge.trace.format import RecordType, TraceWriter, read_trace
from edge.trace.integrity import repair_trace
from edge.types import Block, ChannelSpec, Gap, GapReason, StreamKey

DEMO = Path(__file__).resolve().parent.parent / "edge" / "demo_data" / "mitdb208-5min.vetrace"
DEMO_SAMPLES = 108_000


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("traces")
    return {"demo": DEMO, "rerecorded": rerecord(DEMO, work / "rerecorded.vetrace")}


def _flip(raw: bytes, n: int, seed: int) -> tuple[bytes, set[int]]:
    head, recs = parse(raw)
    rng = np.random.default_rng(seed)
    out = bytearray(raw)
    positions = head + rng.choice(len(raw) - head, n, replace=False)
    for p in positions:
        out[int(p)] ^= 0x5A
    starts = np.array([r.offset for r in recs])
    return bytes(out), {int(np.searchsorted(starts, p, side="right")) - 1 for p in positions}


def _items(path: Path) -> list:
    return list(read_trace(path)[1])


def _samples(items: list) -> int:
    return sum(i.n_samples for i in items if isinstance(i, Block))


# -- the reader ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fifty_flipped_bytes_cost_only_the_records_they_hit(tmp_path, seed):
    raw = DEMO.read_bytes()
    bad, hit = _flip(raw, 50, seed)
    path = tmp_path / "flipped.vetrace"
    path.write_bytes(bad)
    head, recs = parse(raw)
    verdict = judge(_items(DEMO), recs, head, path, hit, len(bad))
    assert verdict.ok, verdict.problem
    info = verdict.info
    assert info is not None
    lost_blocks = [recs[i] for i in hit if recs[i].rtype == RecordType.BLOCK]
    replayed = _samples(_items(path))
    assert replayed == DEMO_SAMPLES - sum(r.n for r in lost_blocks)
    # every lost block is known and reported, except before the first or after the last
    # block read (nothing tells how much stream time was there)
    kept = [i for i, r in enumerate(recs) if r.rtype == RecordType.BLOCK and i not in hit]
    known = [i for i in hit if kept[0] < i < kept[-1] and recs[i].rtype == RecordType.BLOCK]
    assert info.samples_lost == sum(recs[i].n for i in known) == expected_loss(recs, hit)
    assert info.records_skipped == len(known)
    assert info.seconds_lost == pytest.approx(info.samples_lost / 360.0)
    runs = sum(1 for i in hit if i - 1 not in hit)  # neighbouring damaged records: one stretch
    assert len(info.damage) == runs


def test_a_recorder_killed_mid_write_loses_only_its_torn_last_record(tmp_path):
    raw = DEMO.read_bytes()
    path = tmp_path / "torn.vetrace"
    path.write_bytes(raw[:200_000])
    head, recs = parse(raw)
    whole = [r for r in recs if r.offset + r.size <= 200_000]
    info, items = read_trace(path)
    got = list(items)
    assert _samples(got) == sum(r.n for r in whole if r.rtype == RecordType.BLOCK)
    assert len(info.damage) == 1 and info.damage[0].torn_tail
    assert info.dropped_tail_bytes == 200_000 - (whole[-1].offset + whole[-1].size)
    assert "torn record" in info.damage_line(path)
    assert not any(isinstance(i, Gap) for i in got)  # what the cut took is unknown: no gap


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["demo", "rerecorded"]), kind=st.sampled_from(KINDS),
       start=st.integers(1, 2000), count=st.integers(4, 200), seed=st.integers(0, 2**32 - 1))
def test_any_damage_replays_every_record_outside_it_and_reports_exactly_what_was_lost(
        traces, tmp_path, which, kind, start, count, seed):
    raw = traces[which].read_bytes()
    head, recs = parse(raw)
    start = min(start, len(recs) - 1)
    small, small_recs, picked = window(raw, head, recs, start, count)
    intact = tmp_path / f"{which}-intact.vetrace"
    intact.unlink(missing_ok=True)
    intact.write_bytes(small)
    mutated, damaged, desc = mutate(small, head, small_recs, np.random.default_rng(seed), kind)
    path = tmp_path / f"{which}-mutated.vetrace"
    path.write_bytes(mutated)
    verdict = judge(_items(intact), small_recs, head, path, damaged, len(mutated))
    assert verdict.ok, f"{desc}: {verdict.problem}"


def test_a_scanned_record_must_also_be_plausible_where_it_is_found(tmp_path):
    """A whole, CRC-correct copy of an earlier block inside damage is not resynchronised to:
    its sample index goes back."""
    raw = DEMO.read_bytes()
    head, recs = parse(raw)
    blocks = [r for r in recs if r.rtype == RecordType.BLOCK]
    early, victim = blocks[10], blocks[600]
    old = raw[early.offset:early.offset + early.size]
    junk = b"\x00" * 7 + old + b"\xff" * 5  # the copy sits inside a damaged stretch
    bad = raw[:victim.offset + 3] + junk + raw[victim.offset + 3 + len(junk):]
    path = tmp_path / "copy.vetrace"
    path.write_bytes(bad)
    got = [i for i in _items(path) if isinstance(i, Block)]
    firsts = [b.first_index for b in got]
    assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)
    assert _samples(got) < DEMO_SAMPLES


def test_a_damaged_header_costs_its_metadata_not_the_records(tmp_path):
    raw = bytearray(DEMO.read_bytes())
    raw[40] ^= 0xFF  # inside the metadata JSON
    path = tmp_path / "header.vetrace"
    path.write_bytes(bytes(raw))
    info, items = read_trace(path)
    assert _samples(list(items)) == DEMO_SAMPLES
    assert info.damage[0].offset == 0 and info.damage[0].length == parse(DEMO.read_bytes())[0]
    assert info.damage[0].note == "header damaged: metadata lost" and info.metadata == {}


def test_a_damaged_declaration_costs_only_the_records_up_to_the_next_one(traces, tmp_path):
    raw = traces["rerecorded"].read_bytes()
    head, recs = parse(raw)
    declarations = [i for i, r in enumerate(recs) if r.rtype == RecordType.STREAM]
    assert len(declarations) > 3  # today's writer repeats them
    bad = bytearray(raw)
    bad[recs[0].offset + 12] ^= 0x01
    path = tmp_path / "undeclared.vetrace"
    path.write_bytes(bytes(bad))
    info, items = read_trace(path)
    before = sum(r.n for r in recs[:declarations[1]] if r.rtype == RecordType.BLOCK)
    assert _samples(list(items)) == DEMO_SAMPLES - before
    assert info.damage[0].note == "records of an undeclared stream"
    assert info.records_skipped >= sum(1 for r in recs[:declarations[1]]
                                       if r.rtype == RecordType.BLOCK)


def test_an_empty_or_intact_trace_reports_no_damage():
    info, items = read_trace(DEMO)
    list(items)
    assert info.complete and info.damage_report()["damaged"] is False
    assert info.damage_line("x") == "x: trace intact (6,563 records)"


# -- the recorder ----------------------------------------------------------------------------

KEY = StreamKey("dev", "ecg")
CH = (ChannelSpec("ECG", "mV"),)


def test_the_recorder_writes_long_blocks_as_short_records(tmp_path):
    path = tmp_path / "long.vetrace"
    data = np.arange(2500, dtype=np.float32).reshape(-1, 1)
    with TraceWriter(path, config=TraceConfig(max_record_s=1.0)) as w:
        w.write(Block(KEY, CH, 250.0, 7, 1000, 4.0, 5.0, data))
    got = [i for i in _items(path) if isinstance(i, Block)]
    assert [b.n_samples for b in got] == [250] * 10
    assert [b.first_index for b in got] == list(range(1000, 3500, 250))
    assert [b.device_time for b in got] == pytest.approx([4.0 + k for k in range(10)])
    np.testing.assert_array_equal(np.concatenate([b.data for b in got]), data)


def test_the_recorder_fsyncs_on_its_schedule(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    block = Block(KEY, CH, 250.0, 0, 0, 0.0, 0.0, np.zeros((50, 1), np.float32))
    with TraceWriter(tmp_path / "a.vetrace", config=TraceConfig(fsync_s=3600.0)) as w:
        for _ in range(20):
            w.write(block)
    assert len(calls) == 1  # only when the recording ends
    calls.clear()
    with TraceWriter(tmp_path / "b.vetrace", config=TraceConfig(fsync_s=1e-9)) as w:
        for _ in range(20):
            w.write(block)
    assert len(calls) >= 20  # each record is on disk before the next one is written


# -- through the pipeline and the commands ------------------------------------------------

@pytest.fixture
def damaged(tmp_path) -> Path:
    bad, _ = _flip(DEMO.read_bytes(), 50, 1)
    path = tmp_path / "damaged.vetrace"
    path.write_bytes(bad)
    return path


def test_corrupt_gaps_flow_through_the_pipeline_like_other_gaps(damaged, caplog):
    src = open_replay(damaged)
    assert isinstance(src, TraceSource)
    with caplog.at_level(logging.WARNING, logger="edge.sources.replay"):
        stats, summary = _run(src)
    info = src.info
    lost = sum(len(d.lost) for d in info.damage)
    assert stats.gaps == lost == summary.gaps and stats.gaps_inserted == 0
    assert stats.samples == DEMO_SAMPLES - info.samples_lost
    assert src.stats.errors["trace_damage"] == len(info.damage)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [info.damage_line(damaged)]


def _run(src):
    import asyncio

    return asyncio.run(run_pipeline(src, EdgeConfig(), keep_beats=False))


def test_the_daemon_replay_source_reads_past_damage(damaged):
    src = build_source(SourceConfig(type="replay", path=str(damaged), speed=10_000.0), 0)
    stats, _ = _run(src)
    assert isinstance(src, TraceSource) and src.info.damage
    assert stats.samples == DEMO_SAMPLES - src.info.samples_lost


def test_a_trace_with_no_readable_stream_is_refused_in_one_line(tmp_path):
    raw = bytearray(DEMO.read_bytes())
    head, recs = parse(bytes(raw))
    for r in recs:
        if r.rtype == RecordType.BLOCK:
            raw[r.offset + 50] ^= 0x01
    path = tmp_path / "ruined.vetrace"
    path.write_bytes(bytes(raw))
    with pytest.raises(TraceError, match="no readable stream"):
        open_replay(path)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_replay_names_the_damage_in_one_line_and_exits_0(run, damaged):
    info, items = read_trace(damaged)
    list(items)
    result = run("replay", str(damaged))
    assert result.exit_code == 0
    assert result.stderr.count("trace damaged") == 1
    assert info.damage_line(damaged) in result.stderr
    out = json.loads(run("replay", "--json", str(damaged)).stdout)
    assert out["trace"] == info.damage_report()
    assert out["samples"] == DEMO_SAMPLES - info.samples_lost
    assert out["gaps"] == sum(len(d.lost) for d in info.damage)


def test_replay_of_an_intact_trace_says_nothing_about_damage(run):
    result = run("replay", "--json", str(DEMO))
    assert result.exit_code == 0 and "damaged" not in result.stderr
    assert json.loads(result.stdout)["trace"]["damaged"] is False


def test_replay_of_a_trace_with_no_readable_stream_fails_in_one_line(run, tmp_path):
    path = tmp_path / "cut.vetrace"
    path.write_bytes(DEMO.read_bytes()[:900])
    result = run("replay", str(path))
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no readable stream" in result.output


def test_trace_check_reports_streams_duration_and_damage(run, damaged):
    intact = json.loads(run("trace", "check", "--json", str(DEMO)).stdout)
    assert intact["records"] == 6563 and intact["damage"]["damaged"] is False
    (stream,) = intact["streams"]
    assert stream["samples"] == DEMO_SAMPLES and stream["seconds"] == 300.0
    assert stream["annotations"] == 535
    result = run("trace", "check", "--json", str(damaged))
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["damage"]["damaged"] and report["damage"]["samples_lost"] > 0
    assert report["streams"][0]["gaps"] == {"corrupt": sum(
        1 for p in report["damage"]["places"] if p["samples_lost"])}
    text = run("trace", "check", str(damaged)).output
    assert "trace damaged at" in text
    assert run("trace", "check", "--strict", str(damaged)).exit_code == 1
    assert run("trace", "check", "--strict", str(DEMO)).exit_code == 0


def test_trace_repair_writes_a_clean_copy_with_gaps_where_the_damage_was(run, damaged,
                                                                          tmp_path):
    out = tmp_path / "repaired.vetrace"
    result = run("trace", "repair", str(damaged), str(out))
    assert result.exit_code == 0, result.output
    info, items = read_trace(damaged)
    original = list(items)
    rinfo, ritems = read_trace(out)
    repaired = list(ritems)
    assert rinfo.complete
    assert rinfo.metadata["repaired_from"] == damaged.name
    assert [type(i).__name__ for i in repaired] == [type(i).__name__ for i in original]
    gaps = [(g.start_index, g.end_index) for g in repaired
            if isinstance(g, Gap) and g.reason is GapReason.CORRUPT]
    assert gaps == [(s, e) for d in info.damage for _, s, e, _, _ in d.lost]
    assert _samples(repaired) == _samples(original)
    replay = run("replay", "--json", str(out))
    assert replay.exit_code == 0 and "damaged" not in replay.stderr
    assert json.loads(replay.stdout)["gaps"] == len(gaps)
    again = run("trace", "repair", str(damaged), str(out))
    assert again.exit_code == 1 and "exists already" in again.output


def test_repair_refuses_a_trace_with_nothing_readable(tmp_path):
    path = tmp_path / "cut.vetrace"
    path.write_bytes(DEMO.read_bytes()[:900])
    with pytest.raises(TraceError, match="nothing to repair"):
        repair_trace(path, tmp_path / "out.vetrace")
    assert not (tmp_path / "out.vetrace").exists()


def test_evaluate_false_alarms_on_a_damaged_trace_carries_the_damage(run, damaged):
    out = json.loads(run("evaluate", "--task", "false-alarms", "--json", str(damaged)).stdout)
    (row,) = out["records"]
    assert row["trace"]["damaged"] and row["trace"]["samples_lost"] > 0
    assert row["hours"] == pytest.approx((DEMO_SAMPLES - row["trace"]["samples_lost"])
                                         / 360 / 3600, abs=1e-4)


def test_the_shipped_demo_trace_is_unchanged_and_reads_intact(tmp_path):
    copy = tmp_path / "demo.vetrace"
    shutil.copy(DEMO, copy)
    info, items = read_trace(copy)
    assert _samples(list(items)) == DEMO_SAMPLES and info.complete


def test_bench_on_a_damaged_trace_names_the_damage(run, damaged):
    result = run("bench", "--record", str(damaged), "--repeats", "1", "--json")
    assert result.exit_code == 0
    assert result.stderr.count("trace damaged") == 1
    out = json.loads(result.stdout)
    assert out["trace"]["damaged"]
    assert out["signal_seconds"] == round((DEMO_SAMPLES - out["trace"]["samples_lost"]) / 360, 1)
