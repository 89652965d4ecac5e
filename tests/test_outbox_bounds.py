"""The outbox stays within its size limit by policy, and a full disk never stops detection."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import numpy as np
import pytest

from edge.errors import OutboxFullError, StoreError
from edge.store.outbox import Outbox, OutboxSink
from edge.types import Episode, Priority, StreamKey


def ep(i: int, priority=Priority.WARNING, **kw) -> Episode:
    return Episode(kind="tachycardia", key=StreamKey("d", "ecg"), onset=1000.0 + i,
                   offset=1010.0 + i, onset_index=0, offset_index=10, priority=priority,
                   detector="rate_rules", detector_version="1.0.0",
                   details={"pad": "x" * 2000}, **kw)


def test_size_limit_prunes_evidence_then_delivered_then_info_and_never_alarms(tmp_path, caplog):
    ob = Outbox(tmp_path / "o.sqlite3", max_bytes=400_000, prune_to_fraction=0.8)
    alarms = [ep(i, Priority.URGENT if i % 2 else Priority.WARNING) for i in range(40)]
    for a in alarms:
        ob.put(a)
        ob.put_evidence(a.id, 250.0, "mV", np.zeros(10_000, dtype=np.float32))
    delivered = [ep(100 + i, Priority.WARNING) for i in range(20)]
    for d in delivered:
        ob.put(d)
        ob.mark_synced(d.id, 1)
    caplog.set_level(logging.WARNING)
    for i in range(200):  # info traffic pushes the outbox over its limit
        ob.put(ep(1000 + i, Priority.INFO))
    assert ob.size_bytes() <= 400_000
    ids = {r.episode.id for r in ob.events()}
    assert all(a.id in ids for a in alarms), "an undelivered alarm was pruned"
    assert ob.stats()["evidence_snippets"] == 0
    assert not any(d.id in ids for d in delivered)
    lines = [r.message for r in caplog.records if "size limit reached" in r.message]
    assert lines and "alarms are never removed" in lines[0]
    assert len(lines) < 20, "pruning must log rarely, not on every write"
    ob.close()


def test_a_full_disk_is_a_store_error_and_detection_goes_on(tmp_path, caplog):
    # PRAGMA max_page_count makes SQLite fail with a real SQLITE_FULL, as a full disk does
    ob = Outbox(tmp_path / "o.sqlite3", hard_limit_bytes=64 * 1024)
    with pytest.raises(OutboxFullError) as err:
        for i in range(500):
            ob.put(ep(i, Priority.URGENT))
    assert isinstance(err.value, StoreError) and "outbox full" in str(err.value)
    sink = OutboxSink(ob)
    asyncio.run(sink.handle(ep(9999, Priority.URGENT)))  # the pipeline keeps going
    assert sink.failures == 1 and len(sink.held) == 1
    assert "held in memory" in caplog.text
    ob.close()


def test_a_full_disk_makes_room_from_delivered_events_first(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite3", hard_limit_bytes=64 * 1024)
    stored = []
    with pytest.raises(OutboxFullError):
        for i in range(500):
            e = ep(i, Priority.WARNING)
            ob.put(e)
            stored.append(e)
    for e in stored[:5]:
        ob.mark_synced(e.id, 1)
    ob.put(ep(777, Priority.URGENT))  # fits once delivered events are gone
    assert ob.get(stored[0].id) is None
    ob.close()


def test_a_revision_the_backend_refused_leaves_the_queue_until_requeued(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        a, b = ep(1), ep(2)
        ob.put(a)
        ob.put(b)
        ob.mark_failed(a.id, 1, "HTTP 422")
        assert [r.episode.id for r in ob.pending()] == [b.id]
        assert ob.stats()["failed"] == 1 and ob.failed()[0].last_error == "HTTP 422"
        from dataclasses import replace
        ob.put(replace(a, offset=2000.0))  # a new revision is tried again
        assert {r.episode.id for r in ob.pending()} == {a.id, b.id}
        ob.mark_failed(a.id, 2, "HTTP 422")
        assert ob.retry_failed() == 1
        assert {r.episode.id for r in ob.pending()} == {a.id, b.id}


def test_an_outbox_written_by_schema_1_is_upgraded_in_place(tmp_path):
    path = tmp_path / "o.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE events (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
        priority TEXT NOT NULL, status TEXT NOT NULL, device TEXT NOT NULL, onset REAL NOT NULL,
        offset REAL NOT NULL, payload TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1,
        synced_revision INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
        updated REAL NOT NULL); PRAGMA user_version=1;""")
    db.close()
    with Outbox(path) as ob:
        ob.put(ep(1))
        assert ob.stats()["pending"] == 1


def test_evidence_round_trips_and_delivered_events_expire(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        a = ep(1)
        ob.put(a)
        ob.put_evidence(a.id, 360.0, "mV", np.arange(5, dtype=np.float32))
        ev = ob.evidence(a.id)
        assert ev is not None and ev.fs == 360.0 and ev.samples.tolist() == [0, 1, 2, 3, 4]
        ob.mark_synced(a.id, 1)
        assert ob.delete_delivered_before(cutoff=1e12) == 1
        assert ob.events() == [] and ob.evidence(a.id) is None
