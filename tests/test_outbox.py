"""The outbox keeps every episode once, privately, and survives its process."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat

import pytest

from edge.errors import StoreError
from edge.store.outbox import Outbox, OutboxSink
from edge.types import Episode, Priority, StreamKey


def ep(kind="tachycardia", priority=Priority.WARNING, onset=100.0, **kw):
    return Episode(kind=kind, key=StreamKey("d", "ecg"), onset=onset, offset=onset + 20,
                   onset_index=0, offset_index=5000, priority=priority, detector="rate_rules",
                   detector_version="1.0.0", **kw)


def test_the_outbox_is_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as ob:
        ob.put(ep())
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p


def test_the_outbox_uses_write_ahead_logging(tmp_path):
    with Outbox(tmp_path / "o.sqlite3"):
        pass
    db = sqlite3.connect(tmp_path / "o.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_episode_sent_again_under_its_id_updates_it_and_bumps_the_revision(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        first = ep(status="ongoing")
        assert ob.put(first) == 1
        assert ob.put(first) == 1  # identical: no new revision
        from dataclasses import replace
        assert ob.put(replace(first, status="ended", offset=200.0)) == 2
        rows = ob.events()
        assert len(rows) == 1 and rows[0].episode.status == "ended" and rows[0].revision == 2


def test_pending_lists_urgent_first_and_synced_events_leave_it(tmp_path):
    with Outbox(tmp_path / "o.sqlite3") as ob:
        a = ep(onset=1.0, priority=Priority.INFO)
        b = ep(onset=2.0, priority=Priority.URGENT, kind="asystole")
        c = ep(onset=3.0)
        for e in (a, b, c):
            ob.put(e)
        assert [r.episode.id for r in ob.pending()] == [b.id, c.id, a.id]
        ob.mark_synced(b.id, 1)
        assert [r.episode.id for r in ob.pending()] == [c.id, a.id]
        assert ob.counts() == {"total": 3, "pending": 2}


def test_episodes_round_trip_through_the_store_unchanged(tmp_path):
    e = ep(details={"limit_bpm": 120.0})
    with Outbox(tmp_path / "o.sqlite3") as ob:
        ob.put(e)
    with Outbox(tmp_path / "o.sqlite3") as ob:
        assert ob.events()[0].episode == e


def test_a_store_that_cannot_write_holds_episodes_and_delivers_them_later(tmp_path, caplog):
    class FlakyOutbox(Outbox):
        fail = True

        def put(self, episode):
            if self.fail:
                raise StoreError("disk full")
            return super().put(episode)

    ob = FlakyOutbox(tmp_path / "o.sqlite3")
    sink = OutboxSink(ob)
    asyncio.run(sink.handle(ep(onset=1.0)))
    asyncio.run(sink.handle(ep(onset=2.0)))
    assert sink.failures == 2 and len(sink.held) == 2
    assert "outbox write failed" in caplog.text
    ob.fail = False
    asyncio.run(sink.close())
    assert len(ob.events()) == 2 and sink.held == []
    ob.close()


def test_an_unopenable_outbox_is_a_clear_store_error(tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StoreError, match="cannot open outbox"):
        Outbox(tmp_path / "dir.sqlite3")
