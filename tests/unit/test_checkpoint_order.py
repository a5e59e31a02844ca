"""A periodic checkpoint's write that outlives its cancelled ``run()`` never replaces a newer one.

At shutdown the supervisor cancels :meth:`Checkpointer.run` and saves once more. The
periodic write already handed to its thread cannot be stopped; if that thread had started
but not yet taken the write lock when the shutdown save took it (a thread descheduled on a
loaded machine), it wrote its older snapshot and positions over the newer file. The intake
log had meanwhile deleted the segments the newer position covered, so a restart resumed
from the older position without the events between the two. Each save now carries the
order of its capture, and a write older than the file on disk is skipped.

The thread's delay is a stand-in: a lock whose acquire from any thread but the main one
first waits for the test (no real scheduler deschedules a thread on demand).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType

from detector.delivery.checkpoint import Checkpointer


class HeldLock:
    """``threading.Lock`` for ``with``; a worker thread waits for :attr:`gate` first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.waiting = threading.Event()  # a worker thread is on its way to the lock
        self.left = threading.Event()  # that thread released the lock again

    def _worker(self) -> bool:
        return threading.current_thread() is not threading.main_thread()

    def __enter__(self) -> HeldLock:
        if self._worker():
            self.waiting.set()
            self.gate.wait(10)
        self._lock.acquire()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._lock.release()
        if self._worker():
            self.left.set()


class State:
    """The engine's snapshot and the intake's position, both moved on by the test."""

    position_key = "intake_log"

    def __init__(self) -> None:
        self.at = 1
        self.committed: list[int] = []

    def snapshot(self) -> bytes:
        return f"state at {self.at}".encode()

    def capture(self) -> int:
        return self.at

    def commit(self, captured: int) -> None:
        self.committed.append(captured)


async def test_a_cancelled_periodic_write_does_not_replace_the_shutdown_save(
    tmp_path: Path,
) -> None:
    path = tmp_path / "engine.ckpt"
    checkpointer = Checkpointer(path, interval_s=0.01)
    lock = checkpointer._write_lock = HeldLock()  # type: ignore[assignment]
    state = State()
    checkpointer.followers.append(state)
    periodic = asyncio.create_task(checkpointer.run(state))
    try:
        assert await asyncio.to_thread(lock.waiting.wait, 10)  # captured at 1, not written
        periodic.cancel()
        await asyncio.gather(periodic, return_exceptions=True)
        state.at = 2
        assert checkpointer.try_save(state)  # the shutdown save
    finally:
        lock.gate.set()
    assert await asyncio.to_thread(lock.left.wait, 10)  # the old write thread is done
    reader = Checkpointer(path)
    assert reader.read() == b"state at 2"
    assert reader.positions == {"intake_log": 2}
    assert state.committed == [2]
