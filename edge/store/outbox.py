"""The outbox: every episode, stored once under its id, until the backend has it.

Durability (fsync policy). SQLite in WAL mode with ``synchronous=FULL``: every
``put`` / ``mark_synced`` is one transaction, and a commit returns only once the
write-ahead log has been fsync'ed, so an episode the pipeline has handed over
survives ``kill -9`` and a power cut (with NORMAL, a power cut could lose the
last commits; ``kill -9`` alone could not). Episodes are few (a handful an
hour), so an fsync per commit costs nothing that matters (``tools/bench_sync.py``
measures it). The WAL is checkpointed automatically and truncated to 4 MiB.

Exactly once. An episode sent again under the same id (an ``ongoing`` alarm that
has now ended) replaces the stored one and bumps its ``revision``; the sync layer
uploads the latest revision and calls ``mark_synced(id, revision)`` only after
the backend's transaction-response arrived. A crash between the two resends the
revision, and the backend's conditional create/update on the event identifier
makes that resend harmless.

Bounded size. Above ``max_bytes`` (pages in use) the outbox prunes, in order:
evidence snippets, events already delivered, undelivered info-priority events.
Undelivered urgent and warning alarms are never pruned. Each pruning logs one
line. A full disk raises :class:`~edge.errors.OutboxFullError` (a
:class:`StoreError`): the pipeline's :class:`OutboxSink` holds the episode in
memory and detection goes on.

The file (and its ``-wal``/``-shm`` siblings) is created ``0600``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import OutboxFullError, StoreError
from edge.types import Episode

SCHEMA_VERSION = 2
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
CREATE TABLE IF NOT EXISTS evidence (
    event_id   TEXT PRIMARY KEY,
    fs         REAL NOT NULL,
    unit       TEXT NOT NULL,
    n_samples  INTEGER NOT NULL,
    data       BLOB NOT NULL,
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# columns added in schema 2 (an outbox written by version 1 is upgraded in place)
_V2_COLUMNS = {
    "synced_at": "REAL",
    "failed_revision": "INTEGER NOT NULL DEFAULT 0",
    "last_error": "TEXT",
}

_PRIORITY_ORDER = "CASE priority WHEN 'urgent' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"
_PENDING = "synced_revision < revision AND failed_revision < revision"


@dataclass(frozen=True)
class StoredEvent:
    episode: Episode
    revision: int
    synced_revision: int
    created: float
    updated: float
    failed_revision: int = 0
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.synced_revision < self.revision

    @property
    def failed(self) -> bool:
        """The backend refused this revision's content; it waits for ``edge outbox flush``."""
        return self.failed_revision >= self.revision > self.synced_revision


@dataclass(frozen=True)
class Evidence:
    """A waveform snippet kept as evidence for an episode (one channel, physical units)."""

    event_id: str
    fs: float
    unit: str
    samples: np.ndarray


@dataclass(frozen=True)
class PruneReport:
    evidence: int = 0
    delivered: int = 0
    info: int = 0

    @property
    def total(self) -> int:
        return self.evidence + self.delivered + self.info


def _create_private(path: Path) -> None:
    """Create the database file (and its WAL/SHM siblings) readable by the owner only."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if not p.exists():
            fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(p, 0o600)


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
        "database or disk is full" in str(exc))


class Outbox:
    """SQLite store of episodes. Use as a context manager, or call :meth:`close`.

    ``max_bytes`` bounds the database (0 = unbounded); see the module docstring for
    the pruning order. ``hard_limit_bytes`` makes SQLite itself refuse to grow past
    that size (``PRAGMA max_page_count``), as a disk would when full.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 0,
                 prune_to_fraction: float = 0.8, hard_limit_bytes: int = 0,
                 synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.prune_to_fraction = float(prune_to_fraction)
        self._warned_alarms_only = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA journal_size_limit=4194304")
            self._db.executescript(_SCHEMA)
            have = {r[1] for r in self._db.execute("PRAGMA table_info(events)")}
            for name, decl in _V2_COLUMNS.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {decl}")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
            if hard_limit_bytes:
                self._db.execute(
                    f"PRAGMA max_page_count={max(1, hard_limit_bytes // self._page_size)}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open outbox ({exc})") from exc

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    # -- writing ---------------------------------------------------------------------------

    def put(self, episode: Episode) -> int:
        """Store or update an episode; return its revision.

        Raises :class:`OutboxFullError` when neither the size limit nor the disk leave
        room even after pruning, :class:`StoreError` on any other failure.
        """
        try:
            rev = self._put(episode)
        except sqlite3.Error as exc:
            if not _is_full(exc):
                raise StoreError(f"{self.path}: cannot store event ({exc})") from exc
            # the disk (or the hard limit) is full: make room by policy and try once more
            if self._prune(need_all=True).total == 0:
                raise OutboxFullError(
                    f"{self.path}: outbox full, event {episode.id} not stored ({exc})") from exc
            try:
                rev = self._put(episode)
            except sqlite3.Error as exc2:
                cls = OutboxFullError if _is_full(exc2) else StoreError
                raise cls(f"{self.path}: cannot store event {episode.id} ({exc2})") from exc2
        self._enforce_limit()
        return rev

    def _put(self, episode: Episode) -> int:
        now = time.time()
        payload = json.dumps(episode.to_dict(), sort_keys=True)
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
        if row is None:  # identical payload already stored
            return int(self._db.execute("SELECT revision FROM events WHERE id=?",
                                        (episode.id,)).fetchone()[0])
        return int(row[0])

    def put_evidence(self, event_id: str, fs: float, unit: str, samples: np.ndarray) -> None:
        """Keep a waveform snippet as evidence for an episode (first to go when space runs out)."""
        data = np.ascontiguousarray(samples, dtype="<f4")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO evidence (event_id, fs, unit, n_samples, data, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, float(fs), unit, int(data.size), data.tobytes(), time.time()))
        except sqlite3.Error as exc:
            cls = OutboxFullError if _is_full(exc) else StoreError
            raise cls(f"{self.path}: cannot store evidence for {event_id} ({exc})") from exc
        self._enforce_limit()

    def mark_synced(self, event_id: str, revision: int) -> None:
        try:
            self._db.execute(
                "UPDATE events SET synced_revision=MAX(synced_revision, ?), synced_at=?,"
                " last_error=NULL WHERE id=?",
                (revision, time.time(), event_id))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot mark event synced ({exc})") from exc

    def mark_many_synced(self, done: list[tuple[str, int]]) -> None:
        """Mark several (id, revision) pairs delivered in one transaction (one fsync)."""
        now = time.time()
        try:
            with self._transaction():
                self._db.executemany(
                    "UPDATE events SET synced_revision=MAX(synced_revision, ?), synced_at=?,"
                    " last_error=NULL WHERE id=?",
                    [(rev, now, eid) for eid, rev in done])
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot mark events synced ({exc})") from exc

    def mark_failed(self, event_id: str, revision: int, reason: str) -> None:
        """Park a revision the backend refused: it leaves ``pending()`` until :meth:`retry_failed`.

        ``reason`` must not contain patient data (a status code and a FHIR issue code).
        """
        try:
            self._db.execute(
                "UPDATE events SET failed_revision=MAX(failed_revision, ?), last_error=?"
                " WHERE id=?", (revision, reason[:500], event_id))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot mark event failed ({exc})") from exc

    def retry_failed(self) -> int:
        """Put every parked revision back in the queue; return how many."""
        try:
            cur = self._db.execute(
                "UPDATE events SET failed_revision=0 WHERE failed_revision >= revision"
                " AND synced_revision < revision")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot requeue failed events ({exc})") from exc
        return int(cur.rowcount)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- sync bookkeeping (shared with `edge outbox status` in another process) ----------

    def set_meta(self, **values: Any) -> None:
        try:
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()])
        except sqlite3.Error as exc:
            cls = OutboxFullError if _is_full(exc) else StoreError
            raise cls(f"{self.path}: cannot record sync state ({exc})") from exc

    def meta(self) -> dict[str, Any]:
        try:
            return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read sync state ({exc})") from exc

    # -- reading ---------------------------------------------------------------------------

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> Iterator[StoredEvent]:
        try:
            cur = self._db.execute(
                "SELECT payload, revision, synced_revision, created, updated, failed_revision,"
                " last_error FROM events " + sql, args)
            for payload, rev, synced, created, updated, failed, err in cur.fetchall():
                yield StoredEvent(Episode.from_dict(json.loads(payload)), rev, synced, created,
                                  updated, failed, err)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read events ({exc})") from exc

    def events(self, limit: int | None = None, kind: str | None = None) -> list[StoredEvent]:
        """All events in onset order (optionally of one kind, at most ``limit``)."""
        where, args = ("WHERE kind=?", (kind,)) if kind else ("", ())
        lim = f" LIMIT {int(limit)}" if limit else ""
        return list(self._rows(f"{where} ORDER BY onset{lim}", args))

    def recent(self, limit: int = 100) -> list[StoredEvent]:
        """The newest ``limit`` events, newest onset first."""
        return list(self._rows("ORDER BY onset DESC LIMIT ?", (int(limit),)))

    def evidence_ids(self, event_ids: list[str]) -> set[str]:
        """Which of ``event_ids`` have an evidence snippet stored."""
        if not event_ids:
            return set()
        marks = ",".join("?" * len(event_ids))
        try:
            rows = self._db.execute(
                f"SELECT event_id FROM evidence WHERE event_id IN ({marks})", event_ids)
            return {r[0] for r in rows.fetchall()}
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read evidence ({exc})") from exc

    def get(self, event_id: str) -> StoredEvent | None:
        rows = list(self._rows("WHERE id=?", (event_id,)))
        return rows[0] if rows else None

    def pending(self, limit: int = 100) -> list[StoredEvent]:
        """Events with an undelivered revision: urgent first, then oldest first.

        Revisions the backend refused (:meth:`mark_failed`) are left out until requeued.
        """
        return list(self._rows(
            f"WHERE {_PENDING} ORDER BY {_PRIORITY_ORDER}, onset LIMIT ?", (limit,)))

    def failed(self) -> list[StoredEvent]:
        return list(self._rows(
            "WHERE failed_revision >= revision AND synced_revision < revision ORDER BY onset"))

    def evidence(self, event_id: str) -> Evidence | None:
        try:
            row = self._db.execute(
                "SELECT fs, unit, data FROM evidence WHERE event_id=?", (event_id,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read evidence ({exc})") from exc
        if row is None:
            return None
        return Evidence(event_id, float(row[0]), str(row[1]),
                        np.frombuffer(row[2], dtype="<f4").copy())

    def counts(self) -> dict[str, int]:
        total, pending = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(synced_revision < revision), 0) FROM events"
        ).fetchone()
        return {"total": int(total), "pending": int(pending)}

    def stats(self) -> dict[str, Any]:
        """Queue depth, oldest undelivered event, failures and size, for status displays."""
        try:
            pending, failed, oldest = self._db.execute(
                f"SELECT COALESCE(SUM({_PENDING}), 0),"
                " COALESCE(SUM(failed_revision >= revision AND synced_revision < revision), 0),"
                " MIN(CASE WHEN synced_revision < revision THEN created END) FROM events"
            ).fetchone()
            by_priority = dict(self._db.execute(
                f"SELECT priority, COUNT(*) FROM events WHERE {_PENDING} GROUP BY priority"
            ).fetchall())
            total = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            n_evidence = self._db.execute("SELECT COUNT(*) FROM evidence").fetchone()[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read outbox stats ({exc})") from exc
        return {"total": int(total), "pending": int(pending), "failed": int(failed),
                "pending_by_priority": {k: int(v) for k, v in by_priority.items()},
                "oldest_pending_created": oldest, "evidence_snippets": int(n_evidence),
                "size_bytes": self.size_bytes(), "max_bytes": self.max_bytes}

    def size_bytes(self) -> int:
        """Bytes of database pages in use (free pages left by deletions are reused)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * self._page_size)

    # -- bounded size ----------------------------------------------------------------------

    def delete_delivered_before(self, cutoff: float) -> int:
        """Delete events delivered before ``cutoff`` (epoch s); the backend holds them."""
        try:
            with self._transaction():
                self._db.execute(
                    "DELETE FROM evidence WHERE event_id IN (SELECT id FROM events WHERE"
                    " synced_revision >= revision AND synced_at < ?)", (cutoff,))
                cur = self._db.execute(
                    "DELETE FROM events WHERE synced_revision >= revision AND synced_at < ?",
                    (cutoff,))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot delete delivered events ({exc})") from exc
        return int(cur.rowcount)

    def _enforce_limit(self) -> None:
        if self.max_bytes <= 0 or self.size_bytes() <= self.max_bytes:
            return
        try:
            self._prune()
        except sqlite3.Error as exc:
            log.error("outbox: pruning to the size limit failed: %s", exc)

    def _prune(self, need_all: bool = False) -> PruneReport:
        """Delete by policy until below the target size (or, ``need_all``, one batch each)."""
        target = int(self.max_bytes * self.prune_to_fraction) if self.max_bytes else 0
        before = self.size_bytes()
        counts = {"evidence": 0, "delivered": 0, "info": 0}
        steps = (
            ("evidence", "SELECT event_id FROM evidence ORDER BY created LIMIT 64",
             "DELETE FROM evidence WHERE event_id=?"),
            ("delivered", "SELECT id FROM events WHERE synced_revision >= revision"
             " ORDER BY onset LIMIT 64", "DELETE FROM events WHERE id=?"),
            ("info", f"SELECT id FROM events WHERE priority='info' AND {_PENDING}"
             " ORDER BY onset LIMIT 64", "DELETE FROM events WHERE id=?"),
        )
        for name, select, delete in steps:
            while need_all or self.size_bytes() > target:
                ids = [r[0] for r in self._db.execute(select).fetchall()]
                if not ids:
                    break
                with self._transaction():
                    self._db.executemany(delete, [(i,) for i in ids])
                    if name != "evidence":
                        self._db.executemany("DELETE FROM evidence WHERE event_id=?",
                                             [(i,) for i in ids])
                counts[name] += len(ids)
                if need_all:
                    break
            if need_all and sum(counts.values()) > 0:
                break
        report = PruneReport(**counts)
        after = self.size_bytes()
        if report.total:
            log.warning(
                "outbox: size limit reached (%d bytes in use, limit %d): removed %d evidence "
                "snippet(s), %d delivered event(s), %d undelivered info event(s); "
                "urgent and warning alarms are never removed (now %d bytes)",
                before, self.max_bytes, report.evidence, report.delivered, report.info, after)
            self._warned_alarms_only = False
        elif not self._warned_alarms_only and not need_all:
            log.error("outbox: over its size limit (%d > %d bytes) with only undelivered "
                      "alarms left; they are kept until delivered", after, self.max_bytes)
            self._warned_alarms_only = True
        return report


class OutboxSink:
    """Pipeline sink that stores every episode in an :class:`Outbox`.

    A store failure (disk full, I/O error) must not stop detection: the
    episode is kept in memory, one line is logged, the failure is counted,
    and every held episode is retried on the next one (and on close).
    """

    def __init__(self, outbox: Outbox, max_held: int = 10_000,
                 on_stored: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self.stored = 0
        self.failures = 0
        self.held: list[Episode] = []
        self._max_held = max_held
        self.on_stored = on_stored  # e.g. wake the sync engine

    def _drain(self) -> None:
        while self.held:
            self.outbox.put(self.held[0])
            self.held.pop(0)
            self.stored += 1
            if self.on_stored is not None:
                self.on_stored()

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
