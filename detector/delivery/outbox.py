"""The durable outbox: every chain record is stored here before any delivery is tried.

SQLite in WAL mode, ``synchronous=FULL`` (a commit survives a crash and a power cut);
the tables and their SQL are in :mod:`detector.delivery.store`, whose ``Row`` and
``DeadLetter`` are re-exported here.

A record lives while any sink still owes it: :meth:`Outbox.ack` deletes the sink's
pending row and the record with its last row, and remembers the id as delivered to that
sink for ``remember_delivered_s``; a later add of the same id is not owed to that sink
again (reported through ``on_repeat``), so each sink gets a chain once across restarts.
Expiry by count (``max_records``, oldest first) and age (``max_age_s``) is reported
through ``on_expired`` so it is counted and logged, never silent.

Threading: one worker thread owns the connection; the event loop only awaits it.
:meth:`Outbox.add` group-commits: concurrent callers are written in one transaction by a
writer task the outbox owns, and each caller returns once its row is committed. At most
``max_pending_submits`` callers wait, so a slow disk pushes back on the producer.
The writer task belongs to the outbox: :meth:`Outbox.close` refuses new submits, waits
until every submit that began before it is committed, and only then closes the store;
cancelled, it cancels the writer and fails its waiting callers, so no task outlives it.
That wait is bounded (``close(timeout_s)``, :data:`CLOSE_TIMEOUT_S` by default): a commit
held up longer (a stalled disk) is logged as ``outbox_close_timed_out`` with the submits
left unconfirmed, their callers get :class:`OutboxClosedError`, and the store's close is
queued behind the commit on the outbox's thread without waiting for it there. The commit
itself is not interrupted, so whatever it writes and everything committed before it stay
in the database; a submit told "not confirmed" may still have been stored, and is then
delivered after the restart (a record's id is its idempotency key: never twice to a sink).

Dead letters are pruned to ``max_dead_letters`` (oldest first); the pruned ids go to
``on_expired`` with reason ``dead_letter_cap``, like every other expiry.

Files: the database and its side files hold full chain records; the store keeps them
owner-only (mode 0o600, see :mod:`detector.delivery.store`).

Exceptions::

    OutboxClosedError (RuntimeError)   add() after close() began, or close() was cancelled
                                       or timed out before the submit was committed
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, ParamSpec, TypeVar

from detector.delivery.store import DeadLetter, Row, Store
from detector.logging import get_logger
from detector.sinks.config import OutboxConfig

__all__ = ["DeadLetter", "ExpiredCallback", "Outbox", "OutboxClosedError", "Row"]

P = ParamSpec("P")
T = TypeVar("T")
ExpiredCallback = Callable[[list[str], str], None]
RepeatCallback = Callable[[list[tuple[str, str]]], None]
log = get_logger("detector.outbox")
# How long close() waits for commits already in progress. An fsync'd SQLite commit takes
# milliseconds; one still running after this long is a stalled disk, and a shutdown must
# not wait on it forever (the process's own exit still lets the commit finish).
CLOSE_TIMEOUT_S: Final = 10.0


class OutboxClosedError(RuntimeError):
    """The outbox is closing or closed: the record was not stored."""


class Outbox:
    """Async face of the store: every call runs on the outbox's own worker thread."""

    def __init__(
        self,
        config: OutboxConfig,
        on_expired: ExpiredCallback | None = None,
        clock: Callable[[], float] = time.time,
        on_repeat: RepeatCallback | None = None,
    ) -> None:
        """``on_repeat``: (id, sink) pairs not stored because the sink already has the id."""
        self._config = config
        self._on_expired = on_expired or (lambda ids, reason: None)
        self._on_repeat = on_repeat or (lambda pairs: None)
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._store: Store | None = None
        self._opening = asyncio.Lock()  # two first add()s must not open two connections
        self._slots = asyncio.Semaphore(config.max_pending_submits)
        self._queue: list[tuple[str, bytes, Sequence[str], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closing = False  # close() began: add() refuses new records
        self._closed = False  # the writer is stopped: nothing more is queued
        self._submitting = 0  # add() calls between their start and their commit
        self._idle = asyncio.Event()

    async def open(self) -> None:
        """Create or open the database (idempotent)."""
        async with self._opening:
            if self._closed:
                raise OutboxClosedError("the outbox is closed")
            if self._store is None:
                self._store = await self._run(Store, self._config)

    async def add(self, record_id: str, body: bytes, sinks: Sequence[str]) -> None:
        """Store one record owed to ``sinks``; return once it is committed."""
        if self._closing:
            raise OutboxClosedError("the outbox is closed: record not stored")
        self._submitting += 1
        self._idle.clear()
        try:
            await self._submit(record_id, body, sinks)
        finally:
            self._submitting -= 1
            if not self._submitting:
                self._idle.set()

    async def _submit(self, record_id: str, body: bytes, sinks: Sequence[str]) -> None:
        await self.open()
        await self._slots.acquire()
        if self._closed:  # close() was cancelled while this submit waited for a slot
            self._slots.release()
            raise OutboxClosedError("the outbox closed before the record was stored")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((record_id, body, sinks, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())
        await done

    async def _write_batches(self) -> None:
        """Commit whatever has queued up, batch after batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                items = [(rid, body, sinks) for rid, body, sinks, _ in batch]
                inserted = await self._run(self._db().insert, items, self._clock())
            except asyncio.CancelledError:  # close() gave up: nobody may wait forever
                batch, self._queue = batch + self._queue, []
                _settle(batch, OutboxClosedError("closed before the commit was confirmed"))
                raise
            except Exception as exc:  # every waiting caller learns of the failed commit
                _settle(batch, exc)
            else:
                _settle(batch, None)
                if inserted.expired:
                    self._on_expired(inserted.expired, "max_records")
                if inserted.repeats:
                    self._on_repeat(inserted.repeats)
            finally:
                for _ in batch:
                    self._slots.release()

    async def expire_old(self) -> None:
        """Drop records older than ``max_age_s`` (reported through ``on_expired``)."""
        expired = await self._run(self._db().expire_old, self._clock())
        if expired:
            self._on_expired(expired, "max_age")

    async def due(self, sink: str, limit: int) -> list[Row]:
        """The oldest records ``sink`` still owes."""
        return await self._run(self._db().due, sink, limit)

    async def ack(self, sink: str, seqs: Sequence[int]) -> None:
        """``sink`` acknowledged these records."""
        await self._run(self._db().ack, sink, seqs, self._clock())

    async def fail(self, sink: str, seq: int, error: str) -> None:
        """Record a failed attempt; the record stays owed."""
        await self._run(self._db().fail, sink, seq, error)

    async def dead_letter(self, sink: str, seq: int, reason: str) -> None:
        """``sink`` refused the record for good: keep it in the dead-letter table."""
        pruned = await self._run(self._db().dead_letter, sink, seq, reason, self._clock())
        if pruned:
            self._on_expired(pruned, "dead_letter_cap")

    async def forget_sinks_except(self, sinks: Sequence[str]) -> int:
        """Drop what is owed to sinks that are no longer configured."""
        return await self._run(self._db().forget_sinks_except, sinks)

    async def pending_counts(self) -> dict[str, int]:
        """Records owed, per sink."""
        return await self._run(self._db().pending_counts)

    async def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""
        return await self._run(self._db().dead_letters)

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Refuse new submits, commit those already begun (for ``timeout_s`` at most, see
        the module docstring), then close store and thread."""
        self._closing = True
        timed_out = False
        try:
            async with asyncio.timeout(timeout_s):
                if self._submitting:
                    await self._idle.wait()
                if self._writer is not None:
                    await self._writer
        except TimeoutError:
            timed_out = True
            log.error("outbox_close_timed_out", waited_s=timeout_s, unconfirmed=self._submitting)
        finally:
            await self._stop_writer()
            await self._close_store(wait=not timed_out)

    async def _stop_writer(self) -> None:
        """Cancel + drain: reached with a live writer only when close() was cancelled."""
        self._closed = True
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        self._writer = None

    async def _close_store(self, wait: bool) -> None:
        """Close the store on its thread; ``wait=False`` (a commit held up there): queue
        the close behind it and return, the thread ends once both are done."""
        if not wait:
            store, self._store = self._store, None
            if store is not None:
                self._executor.submit(store.close)
            self._executor.shutdown(wait=False)
            return
        async with self._opening:
            if self._store is not None:
                await self._run(self._store.close)
                self._store = None
        self._executor.shutdown(wait=True)

    def _db(self) -> Store:
        if self._store is None:
            raise RuntimeError("outbox is not open")
        return self._store

    async def _run(self, fn: Callable[P, T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)


def _settle(batch: list[tuple[Any, Any, Any, asyncio.Future[None]]], exc: Exception | None) -> None:
    for *_, done in batch:
        if done.done():  # its caller was cancelled
            continue
        if exc is None:
            done.set_result(None)
        else:
            done.set_exception(exc)
