"""The Slack sink's thread per incident, and the SQLite file that keeps it across restarts.

:class:`Threads` is the map the sink reads (in memory, least recently posted first, at
most ``max_threads``); every change the sink makes is written through to
:class:`ThreadStore` (one row per incident, rewritten whole) before the next Slack call,
so after a restart, ``kill -9`` included, an incident's next chain is replied in the
thread it already has. Table::

    threads   incident (key) · used (recency: higher = posted later) · channel · ts
              · shown · records (JSON list) · replied (JSON list of chain ids)

:class:`ThreadStore` is synchronous and not thread-safe: the sink runs it on a worker
thread of its own (an fsync'd commit takes milliseconds), one connection for every call.

A file that SQLite cannot read as this table at start (not a database, damaged) is moved
aside to ``PATH.corrupt`` (with its side files) and a new one is started empty; a row that
does not decode is skipped. Both are logged (``slack_threads_unreadable``,
``slack_threads_rows_skipped``) and counted in :attr:`ThreadStore.problems`: the incidents
they held get a new thread, nothing else is lost. What the sink does when even a new file
cannot be made, or a write fails, is in :mod:`detector.sinks.slack`.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from detector.logging import get_logger
from detector.private_sqlite import begin, open_private

log = get_logger("detector.sinks.slack")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    incident TEXT PRIMARY KEY, used INTEGER NOT NULL, channel TEXT NOT NULL,
    ts TEXT NOT NULL, shown INTEGER NOT NULL, records BLOB NOT NULL, replied BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS threads_used ON threads (used);
"""
_COLUMNS = "incident, used, channel, ts, shown, records, replied"
_UPSERT = f"INSERT OR REPLACE INTO threads ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608


@dataclass
class Thread:
    """What was posted for one incident: where its root is and which chains it shows."""

    channel: str = ""
    ts: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    replied: set[str] = field(default_factory=set)  # chain ids posted in the thread
    shown: int = 0  # chains the root message shows


class Threads:
    """Incident → :class:`Thread`, the ``max_threads`` least recently posted kept."""

    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self.by_incident: OrderedDict[str, Thread] = OrderedDict()
        self.forgotten: list[str] = []  # dropped here, still to be deleted from the store

    def get(self, incident: str) -> Thread:
        """The incident's thread (a new, empty one if unknown), now the most recent."""
        thread = self.by_incident.get(incident)
        if thread is None:
            return self.put(incident, Thread())
        self.by_incident.move_to_end(incident)
        return thread

    def put(self, incident: str, thread: Thread) -> Thread:
        """``thread`` as the incident's, the most recent; the oldest beyond the bound go."""
        self.by_incident[incident] = thread
        self.by_incident.move_to_end(incident)
        while len(self.by_incident) > self.max_threads:
            oldest, _ = self.by_incident.popitem(last=False)  # the least recently posted to
            self.forgotten.append(oldest)
        return thread


class ThreadStore:
    """The ``threads`` table in ``path``; every method runs on the sink's worker thread."""

    def __init__(self, path: Path, sink: str, threads: Threads) -> None:
        """Open (or create) the file and fill ``threads`` from it, least recently posted
        first; rows beyond its ``max_threads`` (a lowered limit) are deleted. OSError and
        sqlite3.Error when even a new file cannot be made."""
        self._path, self._sink = path, sink
        self.problems: Counter[str] = Counter()  # "unreadable" (file set aside), "rows"
        self._used = 0
        try:
            self._db, rows = _read(path)
        except sqlite3.DatabaseError as exc:  # not a database, damaged
            self._set_aside(exc)
            self._db, rows = _read(path)
        self._load(rows, threads)

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        self.problems["unreadable"] += 1
        aside = self._path.with_name(self._path.name + ".corrupt")
        log.error(
            "slack_threads_unreadable", sink=self._sink, path=str(self._path), error=str(exc),
            moved_to=str(aside), effect="its incidents get new threads",
        )  # fmt: skip
        for suffix in ("", "-wal", "-shm"):
            side = self._path.with_name(self._path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))

    def _load(self, rows: list[tuple[Any, ...]], threads: Threads) -> None:
        skipped: list[str] = []
        for row in rows:
            self._used = max(self._used, row[1] if isinstance(row[1], int) else 0)
            thread = _decode(row)
            if thread is None:
                skipped.append(row[0])
            else:
                threads.put(str(row[0]), thread)
        if skipped:
            self.problems["rows"] += len(skipped)
            log.error("slack_threads_rows_skipped", sink=self._sink, rows=len(skipped))
        with begin(self._db) as db:
            _delete(db, [*threads.forgotten, *skipped])
        threads.forgotten.clear()

    def save(self, incident: str, thread: Thread, threads: Threads) -> None:
        """Write ``incident``'s thread as the most recent, and delete what ``threads``
        has dropped since the last save; one transaction."""
        self._used += 1
        row = (
            incident, self._used, thread.channel, thread.ts, thread.shown,
            orjson.dumps(thread.records), orjson.dumps(sorted(thread.replied)),
        )  # fmt: skip
        forgotten = list(threads.forgotten)
        with begin(self._db) as db:
            db.execute(_UPSERT, row)
            _delete(db, forgotten)
        del threads.forgotten[: len(forgotten)]  # kept for the next save if this one failed

    def close(self) -> None:
        self._db.close()


def _delete(db: sqlite3.Connection, incidents: list[str]) -> None:
    db.executemany("DELETE FROM threads WHERE incident = ?", [(i,) for i in incidents])


def _read(path: Path) -> tuple[sqlite3.Connection, list[tuple[Any, ...]]]:
    """The open file and every row, oldest first (the connection closed on failure)."""
    db = open_private(path)
    try:
        db.executescript(_SCHEMA)
        return db, db.execute(f"SELECT {_COLUMNS} FROM threads ORDER BY used").fetchall()  # noqa: S608
    except sqlite3.Error:
        db.close()
        raise


def _decode(row: tuple[Any, ...]) -> Thread | None:
    """The row as a Thread; None when a field is damaged or of the wrong type."""
    incident, _, channel, ts, shown, records, replied = row
    try:
        records, replied = orjson.loads(records), orjson.loads(replied)
    except (orjson.JSONDecodeError, TypeError):
        return None
    shapes = (
        isinstance(incident, str), isinstance(channel, str), isinstance(ts, str),
        isinstance(shown, int), isinstance(records, list), isinstance(replied, list),
    )  # fmt: skip
    if not all(shapes) or not all(isinstance(r, dict) for r in records):
        return None
    return Thread(channel, ts, records, set(map(str, replied)), shown)
