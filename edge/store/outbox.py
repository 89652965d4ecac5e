"""The outbox: every episode, stored once under its id, until the backend has it.

SQLite in WAL mode with ``synchronous=FULL``: a commit returns only once the
write-ahead log is on disk, so an episode the pipeline has handed over
survives a power cut or ``kill -9``. Episodes are few (a handful an hour), so
the cost of an fsync per commit is small. An episode sent again under the
same id (an ``ongoing`` alarm that has now ended) replaces the stored one and
bumps its revision; the sync layer uploads every revision it has not yet
delivered. The file is created ``0600``: only the service user can read it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.errors import StoreError
from edge.types import Episode

SCHEMA_VERSION = 1
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    priority        TEXT NOT NULL,
    status          TEXT NOT NULL,
    device          TEXT NOT NULL,
    onset           REAL NOT NULL,
    offset          REAL NOT NULL,
    payload         TEXT NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 1,
    synced_revision INTEGER NOT NULL DEFAULT 0,
    created         REAL NOT NULL,
    updated         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (synced_revision, revision);
CREATE INDEX IF NOT EXISTS events_onset ON events (onset);
"""

_PRIORITY_ORDER = "CASE priority WHEN 'urgent' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"


@dataclass(frozen=True)
class StoredEvent:
    episode: Episode
    revision: int
    synced_revision: int
    created: float
    updated: float

    @property
    def pending(self) -> bool:
        return self.synced_revision < self.revision


def _create_private(path: Path) -> None:
    """Create the database file (and its WAL/SHM siblings) readable by the owner only."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not p.exists():
            fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(p, 0o600)


class Outbox:
    """SQLite store of episodes. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open outbox ({exc})") from exc

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def put(self, episode: Episode) -> int:
        """Store or update an episode; return its revision."""
        now = time.time()
        payload = json.dumps(episode.to_dict(), sort_keys=True)
        try:
            row = self._db.execute(
                """INSERT INTO events (id, kind, priority, status, device, onset, offset,
                                       payload, created, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET
                       kind=excluded.kind, priority=excluded.priority, status=excluded.status,
                       offset=excluded.offset, payload=excluded.payload,
                       revision=events.revision + 1, updated=excluded.updated
                   WHERE events.payload != excluded.payload
                   RETURNING revision""",
                (episode.id, episode.kind, episode.priority.value, episode.status,
                 episode.key.device, episode.onset, episode.offset, payload, now, now),
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot store event ({exc})") from exc
        if row is None:  # identical payload already stored
            return int(self._db.execute("SELECT revision FROM events WHERE id=?",
                                        (episode.id,)).fetchone()[0])
        return int(row[0])

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> Iterator[StoredEvent]:
        try:
            cur = self._db.execute(
                "SELECT payload, revision, synced_revision, created, updated FROM events " + sql,
                args)
            for payload, rev, synced, created, updated in cur:
                yield StoredEvent(Episode.from_dict(json.loads(payload)), rev, synced, created,
                                  updated)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read events ({exc})") from exc

    def events(self, limit: int | None = None, kind: str | None = None) -> list[StoredEvent]:
        """All events in onset order (optionally of one kind, at most ``limit``)."""
        where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
        lim = f" LIMIT {int(limit)}" if limit else ""
        return list(self._rows(f"{where} ORDER BY onset{lim}", args))

    def pending(self, limit: int = 100) -> list[StoredEvent]:
        """Events with an undelivered revision: urgent first, then oldest first."""
        return list(self._rows(
            f"WHERE synced_revision < revision ORDER BY {_PRIORITY_ORDER}, onset LIMIT ?",
            (limit,)))

    def mark_synced(self, event_id: str, revision: int) -> None:
        try:
            self._db.execute(
                "UPDATE events SET synced_revision=MAX(synced_revision, ?) WHERE id=?",
                (revision, event_id))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot mark event synced ({exc})") from exc

    def counts(self) -> dict[str, int]:
        total, pending = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(synced_revision < revision), 0) FROM events"
        ).fetchone()
        return {"total": int(total), "pending": int(pending)}


class OutboxSink:
    """Pipeline sink that stores every episode in an :class:`Outbox`.

    A store failure (disk full, I/O error) must not stop detection: the
    episode is kept in memory, one line is logged, the failure is counted,
    and every held episode is retried on the next one (and on close).
    """

    def __init__(self, outbox: Outbox, max_held: int = 10_000) -> None:
        self.outbox = outbox
        self.stored = 0
        self.failures = 0
        self.held: list[Episode] = []
        self._max_held = max_held

    def _drain(self) -> None:
        while self.held:
            self.outbox.put(self.held[0])
            self.held.pop(0)
            self.stored += 1

    async def handle(self, item: object) -> None:
        if not isinstance(item, Episode):
            return
        if len(self.held) >= self._max_held:
            # keep alarms: drop the oldest informational episode to make room
            for i, ep in enumerate(self.held):
                if ep.priority.value == "info":
                    del self.held[i]
                    log.error("outbox: memory hold full; dropped one info-priority episode")
                    break
        self.held.append(item)
        try:
            self._drain()
        except StoreError as exc:
            self.failures += 1
            log.error("outbox write failed, %d episode(s) held in memory: %s",
                      len(self.held), exc)

    async def close(self) -> None:
        if self.held:
            try:
                self._drain()
            except StoreError as exc:
                self.failures += 1
                log.error("outbox write failed at shutdown, %d episode(s) lost: %s",
                          len(self.held), exc)
