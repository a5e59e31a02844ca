"""The outbox's SQLite store: schema, SQL and the rows it hands back.

:class:`Store` is synchronous and not thread-safe on purpose: the async
:class:`detector.delivery.outbox.Outbox` runs every call on its single worker thread, so one
connection serves all of them and transactions never interleave. Tables::

    records       seq (order) · id (unique: the idempotency key) · body (JSON) · created
    pending       (sink, seq) · attempts · last_error      one row per sink still owed
    dead_letters  sink · id · body · reason · failed_at    permanent failures, bounded
    delivered     (sink, id) · at                         acknowledged deliveries, kept
                                                          ``remember_delivered_s``

A record whose id a sink has already acknowledged is not owed to that sink again
(:meth:`Store.insert` returns those (id, sink) pairs as repeats): a chain decided again
after a crash, or re-emitted after a restore, reaches each sink once.

A record is deleted with its last pending row (an "orphan" sweep after every ack, dead
letter or forgotten sink). ``count`` mirrors ``COUNT(*) FROM records`` so the
``max_records`` cap costs no query per insert.

Files: the database and its ``-wal``/``-shm`` side files hold full chain records, so
they are owner-only (mode 0o600, :func:`detector.private_sqlite.open_private`).

Exceptions: none of its own; ``sqlite3.Error`` reaches the outbox, which hands it to the
callers whose batch failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from detector.private_sqlite import begin, open_private
from detector.sinks.config import OutboxConfig

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    sink TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (sink, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    n INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, id TEXT NOT NULL,
    body BLOB NOT NULL, reason TEXT NOT NULL, failed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (
    sink TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (sink, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS delivered_at ON delivered (at);
"""
_DELETE_ORPHANS = (
    "DELETE FROM records WHERE NOT EXISTS (SELECT 1 FROM pending p WHERE p.seq = records.seq)"
)


class Inserted(NamedTuple):
    """What :meth:`Store.insert` did besides storing: ids expired, (id, sink) repeats."""

    expired: list[str]
    repeats: list[tuple[str, str]]


class Row(NamedTuple):
    """One record a sink still owes: outbox order, chain id, JSON body, attempts so far."""

    seq: int
    id: str
    body: bytes
    attempts: int


class DeadLetter(NamedTuple):
    """A record a sink refused for good, with the reason."""

    sink: str
    id: str
    body: bytes
    reason: str
    failed_at: float


class Store:
    """The SQLite side; every method runs on the outbox's single worker thread."""

    def __init__(self, config: OutboxConfig) -> None:
        self._config = config
        self._db = open_private(Path(config.path))
        self._db.executescript(_SCHEMA)
        self.count: int = self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def insert(self, items: Sequence[tuple[str, bytes, Sequence[str]]], now: float) -> Inserted:
        """Store records with one pending row per sink that has not had the id yet."""
        repeats: list[tuple[str, str]] = []
        with self._tx() as db:
            for record_id, body, wanted in items:
                sinks = [s for s in wanted if not self._delivered(db, s, record_id)]
                repeats += [(record_id, s) for s in wanted if s not in sinks]
                if not sinks:
                    continue
                cur = db.execute(
                    "INSERT OR IGNORE INTO records (id, body, created) VALUES (?, ?, ?)",
                    (record_id, body, now),
                )
                if cur.rowcount == 1:  # a duplicate id is already owed to its sinks
                    self.count += 1
                    db.executemany(
                        "INSERT INTO pending (sink, seq) VALUES (?, ?)",
                        [(sink, cur.lastrowid) for sink in sinks],
                    )
            excess = self.count - self._config.max_records
            if excess <= 0:
                return Inserted([], repeats)
            query = "SELECT seq, id FROM records ORDER BY seq LIMIT ?"
            return Inserted(self._expire(db, db.execute(query, (excess,)).fetchall()), repeats)

    @staticmethod
    def _delivered(db: sqlite3.Connection, sink: str, record_id: str) -> bool:
        query = "SELECT 1 FROM delivered WHERE sink = ? AND id = ?"
        return db.execute(query, (sink, record_id)).fetchone() is not None

    def expire_old(self, now: float) -> list[str]:
        """Delete records older than ``max_age_s`` (returns their ids), and delivery
        memories older than ``remember_delivered_s``."""
        with self._tx() as db:
            forget = now - self._config.remember_delivered_s
            db.execute("DELETE FROM delivered WHERE at < ?", (forget,))
            cutoff = now - self._config.max_age_s
            query = "SELECT seq, id FROM records WHERE created < ?"
            return self._expire(db, db.execute(query, (cutoff,)).fetchall())

    def _expire(self, db: sqlite3.Connection, victims: list[tuple[int, str]]) -> list[str]:
        seqs = [(seq,) for seq, _ in victims]
        db.executemany("DELETE FROM pending WHERE seq = ?", seqs)
        db.executemany("DELETE FROM records WHERE seq = ?", seqs)
        self.count -= len(victims)
        return [record_id for _, record_id in victims]

    def due(self, sink: str, limit: int) -> list[Row]:
        """The oldest records ``sink`` still owes, in outbox order."""
        rows = self._db.execute(
            "SELECT r.seq, r.id, r.body, p.attempts FROM pending p JOIN records r USING (seq) "
            "WHERE p.sink = ? ORDER BY p.seq LIMIT ?",
            (sink, limit),
        ).fetchall()
        return [Row(*row) for row in rows]

    def ack(self, sink: str, seqs: Sequence[int], now: float) -> None:
        """``sink`` has these records: remember their ids as delivered to it, forget its
        rows, and records nobody owes any more."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO delivered (sink, id, at) "
                "SELECT ?, id, ? FROM records WHERE seq = ?",
                [(sink, now, s) for s in seqs],
            )
            db.executemany(
                "DELETE FROM pending WHERE sink = ? AND seq = ?", [(sink, s) for s in seqs]
            )
            self._delete_orphans(db)

    def fail(self, sink: str, seq: int, error: str) -> None:
        """Count a failed attempt (the row stays pending)."""
        with self._tx() as db:
            db.execute(
                "UPDATE pending SET attempts = attempts + 1, last_error = ? "
                "WHERE sink = ? AND seq = ?",
                (error[:500], sink, seq),
            )

    def dead_letter(self, sink: str, seq: int, reason: str, now: float) -> list[str]:
        """Move ``sink``'s copy of a record to the dead-letter table; returns ids pruned."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO dead_letters (sink, id, body, reason, failed_at) "
                "SELECT ?, id, body, ?, ? FROM records WHERE seq = ?",
                (sink, reason[:1000], now, seq),
            )
            db.execute("DELETE FROM pending WHERE sink = ? AND seq = ?", (sink, seq))
            self._delete_orphans(db)
            pruned = db.execute(
                "DELETE FROM dead_letters WHERE n <= (SELECT MAX(n) FROM dead_letters) - ? "
                "RETURNING id",
                (self._config.max_dead_letters,),
            ).fetchall()
            return [record_id for (record_id,) in pruned]

    def forget_sinks_except(self, sinks: Sequence[str]) -> int:
        """Drop rows owed to sinks no longer configured; returns how many."""
        with self._tx() as db:
            marks = ",".join("?" * len(sinks))
            query = f"DELETE FROM pending WHERE sink NOT IN ({marks})"  # noqa: S608 - only "?"s
            cur = db.execute(query, tuple(sinks))
            self._delete_orphans(db)
            return cur.rowcount

    def pending_counts(self) -> dict[str, int]:
        """Records owed, per sink."""
        rows = self._db.execute("SELECT sink, COUNT(*) FROM pending GROUP BY sink").fetchall()
        return dict(rows)

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        rows = self._db.execute(
            "SELECT sink, id, body, reason, failed_at FROM dead_letters ORDER BY n"
        ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def _delete_orphans(self, db: sqlite3.Connection) -> None:
        self.count -= db.execute(_DELETE_ORPHANS).rowcount

    def _tx(self) -> sqlite3.Connection:
        return begin(self._db)

    def close(self) -> None:
        self._db.close()
