"""The outbox itself on a real SQLite file: who owns the writer, pruning, file modes."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from detector.delivery import outbox as outbox_module
from detector.delivery.loops import Delivery
from detector.delivery.outbox import Outbox, OutboxClosedError
from detector.delivery.store import Store
from detector.metrics import Metrics
from detector.sinks.config import OutboxConfig, decode


def others() -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_close_commits_waiting_submits_and_leaves_no_task(tmp_path: Path) -> None:
    # One slot: while the first add commits, the other four wait for it inside add().
    config = OutboxConfig(path=str(tmp_path / "o.sqlite3"), max_pending_submits=1)
    outbox = Outbox(config)
    adds = [asyncio.create_task(outbox.add(f"id-{i}", b"{}", ["s"])) for i in range(5)]
    await asyncio.sleep(0)  # every add() has started before close()
    await outbox.close()
    assert all(task.done() for task in adds)
    assert [task.exception() for task in adds] == [None] * 5
    assert others() == set()
    reopened = Outbox(config)
    await reopened.open()
    assert await reopened.pending_counts() == {"s": 5}  # durable: committed before close
    await reopened.close()


async def test_add_after_close_is_refused_clearly(tmp_path: Path) -> None:
    outbox = Outbox(OutboxConfig(path=str(tmp_path / "o.sqlite3")))
    await outbox.add("id-1", b"{}", ["s"])
    await outbox.close()
    with pytest.raises(OutboxClosedError, match="closed"):
        await outbox.add("id-2", b"{}", ["s"])
    assert others() == set()


async def test_concurrent_first_adds_open_one_store(tmp_path: Path) -> None:
    outbox = Outbox(OutboxConfig(path=str(tmp_path / "o.sqlite3")))
    await asyncio.gather(*(outbox.add(f"id-{i}", b"{}", ["s"]) for i in range(3)))
    assert await outbox.pending_counts() == {"s": 3}
    await outbox.close()


async def test_dead_letter_cap_prunes_are_counted_and_logged(tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    outbox = {"path": str(tmp_path / "o.sqlite3"), "max_dead_letters": 2}
    metrics = Metrics()
    registry = metrics.registry
    delivery = Delivery(
        decode({"outbox": outbox, "sinks": [{"type": "file", "path": out}]}), metrics
    )
    store = delivery.outbox
    for i in range(5):
        await store.add(f"id-{i}", b"{}", ["file"])
    rows = await store.due("file", 10)
    with capture_logs() as logs:
        for row in rows:
            await store.dead_letter("file", row.seq, "refused")
    assert [d.id for d in await store.dead_letters()] == ["id-3", "id-4"]
    labels = {"reason": "dead_letter_cap"}
    assert registry.get_sample_value("detector_outbox_expired_total", labels) == 3
    pruned = [e for e in logs if e.get("reason") == "dead_letter_cap"]
    assert [(e["event"], e["count"]) for e in pruned] == [("outbox_expired", 1)] * 3
    await store.close()


async def test_database_and_side_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    old = os.umask(0o022)  # a typical umask: without care the files come out 0o644
    try:
        outbox = Outbox(OutboxConfig(path=str(path)))
        await outbox.add("id-1", b'{"secret": 1}', ["s"])
        side = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in side)  # WAL mode: both exist while open
        assert {p.name: mode(p) for p in [path, *side]} == {p.name: 0o600 for p in [path, *side]}
        await outbox.close()
    finally:
        os.umask(old)


async def test_existing_loose_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(OutboxConfig(path=str(path)))
    await outbox.add("id-1", b"{}", ["s"])
    await outbox.close()
    path.chmod(0o644)  # left by an older version
    reopened = Outbox(OutboxConfig(path=str(path)))
    await reopened.open()
    assert mode(path) == 0o600
    await reopened.close()


async def test_cancelled_close_fails_waiting_submits_and_leaves_no_task(tmp_path: Path) -> None:
    outbox = Outbox(OutboxConfig(path=str(tmp_path / "o.sqlite3"), max_pending_submits=1))
    adds = [asyncio.create_task(outbox.add(f"id-{i}", b"{}", ["s"])) for i in range(20)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(outbox.close())
    await asyncio.sleep(0)
    closing.cancel()  # a shutdown grace period ran out
    async with asyncio.timeout(5):  # nobody is left waiting forever
        results = await asyncio.gather(*adds, closing, return_exceptions=True)
    stored = sum(result is None for result in results[:-1])
    refused = [r for r in results[:-1] if isinstance(r, OutboxClosedError)]
    assert stored + len(refused) == 20, results
    assert isinstance(results[-1], asyncio.CancelledError)
    assert others() == set()
    reopened = Outbox(OutboxConfig(path=str(tmp_path / "o.sqlite3")))
    await reopened.open()
    assert (await reopened.pending_counts()).get("s", 0) >= stored
    await reopened.close()


class HeldStore(Store):
    """The real SQLite store, except that an insert waits for ``gate`` while it is armed:
    a stand-in for a commit held up by a stalled disk (no real disk stalls on demand)."""

    gate: threading.Event | None = None
    entered = threading.Event()
    closed = threading.Event()

    def insert(self, items: Any, now: float) -> Any:
        if HeldStore.gate is not None:
            HeldStore.entered.set()
            HeldStore.gate.wait()
        return super().insert(items, now)

    def close(self) -> None:
        super().close()
        HeldStore.closed.set()


async def test_close_gives_up_on_a_held_commit_after_its_timeout_and_keeps_what_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "Store", HeldStore)
    config = OutboxConfig(path=str(tmp_path / "o.sqlite3"))
    outbox = Outbox(config)
    await outbox.add("before", b"{}", ["s"])  # committed before anything is held up
    gate = HeldStore.gate = threading.Event()
    # The commit is let go after 10 s whatever happens: close() used to wait for it (and
    # could not even be cancelled: its store close queued behind the commit)
    valve = asyncio.get_running_loop().call_later(10, gate.set)
    try:
        held = asyncio.create_task(outbox.add("held", b"{}", ["s"]))
        assert await asyncio.to_thread(HeldStore.entered.wait, 10)  # the commit is held
        with capture_logs() as logs:
            await outbox.close(timeout_s=0.2)
        assert not gate.is_set()  # close() returned while the commit was still held
        timed_out = [e for e in logs if e["event"] == "outbox_close_timed_out"]
        assert [(e["waited_s"], e["unconfirmed"]) for e in timed_out] == [(0.2, 1)]
        with pytest.raises(OutboxClosedError, match="confirmed"):
            await held
        assert others() == set()
        assert not HeldStore.closed.is_set()  # queued behind the held commit, not forced
    finally:
        valve.cancel()
        gate.set()
        HeldStore.gate = None
    assert await asyncio.to_thread(HeldStore.closed.wait, 10)  # closed once the commit ended
    reopened = Outbox(config)
    await reopened.open()
    # what was committed stays; the held commit was not interrupted either (stored, though
    # its caller heard "not confirmed": a restart delivers it, once per sink)
    assert await reopened.pending_counts() == {"s": 2}
    await reopened.close()
