"""The Slack sink's thread file on its own: what a restart reads back, bounds, damage."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from detector.sinks.slack_threads import Thread, Threads, ThreadStore


def saved(path: Path, max_threads: int, *incidents: str) -> None:
    """One life: a thread per incident, in this order, written and closed."""
    threads = Threads(max_threads)
    store = ThreadStore(path, "slack", threads)
    for n, incident in enumerate(incidents):
        thread = threads.get(incident)
        thread.channel, thread.ts, thread.shown = "C1", f"17.{n}", 1
        thread.records.append({"id": f"chain-{incident}", "incident": incident})
        thread.replied.add(f"chain-{incident}")
        store.save(incident, thread, threads)
    store.close()


def loaded(path: Path, max_threads: int) -> tuple[Threads, ThreadStore]:
    threads = Threads(max_threads)
    return threads, ThreadStore(path, "slack", threads)


def test_threads_come_back_in_recency_order_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "slack.threads"
    saved(path, 10, "a", "b", "a2")
    saved(path, 10, "a")  # posted to again: now the most recent
    threads, store = loaded(path, 10)
    assert list(threads.by_incident) == ["b", "a2", "a"]
    assert threads.by_incident["b"] == Thread(
        "C1", "17.1", [{"id": "chain-b", "incident": "b"}], {"chain-b"}, 1
    )
    assert (path.stat().st_mode & 0o777, store.problems) == (0o600, {})
    store.close()


def test_the_bound_holds_on_disk_and_a_lowered_one_at_start(tmp_path: Path) -> None:
    path = tmp_path / "slack.threads"
    saved(path, 2, "a", "b", "c")
    threads, store = loaded(path, 2)
    assert list(threads.by_incident) == ["b", "c"]
    store.close()
    threads, store = loaded(path, 1)  # max_threads lowered between two lives
    store.close()
    assert list(threads.by_incident) == ["c"]
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        assert db.execute("SELECT incident FROM threads").fetchall() == [("c",)]


def test_a_damaged_row_is_skipped_counted_and_logged(tmp_path: Path) -> None:
    path = tmp_path / "slack.threads"
    saved(path, 10, "a", "b")
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE threads SET records = ? WHERE incident = 'a'", (b"{oops",))
    with capture_logs() as logs:
        threads, store = loaded(path, 10)
    store.close()
    assert list(threads.by_incident) == ["b"] and store.problems == {"rows": 1}
    assert [(e["event"], e["rows"]) for e in logs] == [("slack_threads_rows_skipped", 1)]
