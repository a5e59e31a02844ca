"""SQLite files the service keeps for itself: owner-only, WAL, every commit fsync'd.

The outbox (:mod:`detector.delivery.store`) and the Slack sink's thread map
(:mod:`detector.sinks.slack_threads`) hold chain records, so the database is created (or
tightened) to mode 0o600 before SQLite opens it; SQLite gives its ``-wal``/``-shm`` side
files the database file's mode. ``synchronous=FULL`` in WAL mode: a commit survives a
crash and a power cut.

The connection is in autocommit mode (``isolation_level=None``), so a transaction is
opened explicitly with :func:`begin` and ended by the connection's context manager.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def open_private(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` (created owner-only with its directory) in WAL mode."""
    create_private(path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        db.close()  # a file that is not a database fails here: no connection left open
        raise
    return db


def begin(db: sqlite3.Connection) -> sqlite3.Connection:
    """``db`` inside ``BEGIN IMMEDIATE``; ``with begin(db):`` commits or rolls back."""
    # isolation_level=None: the connection's context manager would not BEGIN for us.
    db.execute("BEGIN IMMEDIATE")
    return db


def create_private(path: Path) -> None:
    """Create ``path`` (and its directory) owner-only; tighten it if it exists already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):  # side files an older version left readable
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(0o600)
