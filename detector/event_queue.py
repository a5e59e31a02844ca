"""The one bounded queue between every source and the engine, holding batches.

Capacity and room count *events* (``buffer.max_events``), but the queue holds what was
offered as it came: one entry per accepted batch (an EventList of 250 is one entry, not
250), so a batch costs one append, and the engine takes a run of events of one input with
one call (:meth:`EventQueue.get_batch`) instead of paying a queue operation, a
coroutine switch and a gauge update per event::

    offer(events)   all-or-none, never waits      (HTTP receivers: 429 when short)
    emit(event)     one event, waits for room      (file tailers, gRPC: backpressure)
    get_batch(n)    up to n events of the oldest batch, waits while empty   (engine)
    done_many(s, k) k events of source s are finished: processed() / waiting() move,
                    and drained() returns once nothing accepted is unfinished
    get() / done()  the same one event at a time (the relay worker)

Room frees when events are *taken*; ``processed`` moves only when they are *done*, which
is what a tailer's offset and the intake log's "covered" seq may follow.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence

from correlation.event import Incoming
from detector.metrics import Metrics
from detector.sources.base import Emit

# source, input, arrival on the receiving clock (ns), event (or a claim: parse/early.py)
Item = tuple[str, str, int, Incoming]
Batch = tuple[str, str, int, Sequence[Incoming]]  # the same for a run of events


class _Entry:
    """One accepted batch and how far the engine has taken it."""

    __slots__ = ("arrived", "events", "input", "next", "source")

    def __init__(self, source: str, input: str, arrived: int, events: Sequence[Incoming]) -> None:
        self.source, self.input, self.arrived, self.events = source, input, arrived, events
        self.next = 0  # index of the first event not yet taken


class EventQueue:
    """The one bounded queue between every source and the engine."""

    def __init__(
        self, max_events: int, metrics: Metrics, clock: Callable[[], int] = time.time_ns
    ) -> None:
        """``clock``: the receiving clock that stamps arrivals (injectable for tests)."""
        self._max = max_events
        self._entries: deque[_Entry] = deque()
        self._size = 0  # events queued, not yet taken
        self._unfinished = 0  # events accepted, not yet done
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._finished = asyncio.Event()
        self._finished.set()
        self._metrics, self.clock = metrics, clock
        self._closed = False
        self.pushed: dict[str, bool] = {}  # input name -> pushed (True) or pulled
        # Sources of events taken one at a time but not yet done (FIFO), and how many each
        # source had done: a file tailer's offset may only be committed that far.
        self._taken: deque[str] = deque()
        self._done: dict[str, int] = {}
        self._in: dict[str, int] = {}  # accepted per source, since start
        metrics.queue_capacity.set(max_events)

    @property
    def capacity(self) -> int:
        """The most events the queue can ever hold (``buffer.max_events``)."""
        return self._max

    def room(self) -> int:
        """Events that fit right now (0 once closed)."""
        return 0 if self._closed else self._max - self._size

    def offer(
        self, source: str, events: Sequence[Incoming], input: str = "", arrived: int = 0
    ) -> bool:
        """Enqueue all of ``events`` (of a pushed ``input``, default ``source``) or none
        of them; never waits. ``arrived``: their arrival on the receiving clock, when it
        was stamped earlier (events replayed from the intake log); default now."""
        if self.room() < len(events):
            return False
        if events:
            input = input or source
            self.pushed.setdefault(input, True)
            self._put(_Entry(source, input, arrived or self.clock(), events))
        self._accepted(source, len(events))
        return True

    def emitter(self, source: str, pushed: bool = True) -> Emit:
        """The ``emit`` handed to a source (its one input is named after it): waits for
        space, which is the backpressure to the reader."""
        self.pushed[source] = pushed

        async def emit(event: Incoming) -> None:
            while self._size >= self._max:
                await self._wait(self._putters)
            self._put(_Entry(source, source, self.clock(), (event,)))
            self._accepted(source, 1)

        return emit

    def _put(self, entry: _Entry) -> None:
        self._entries.append(entry)
        self._size += len(entry.events)
        self._unfinished += len(entry.events)
        self._finished.clear()
        _wake(self._getters)

    def _accepted(self, source: str, count: int) -> None:
        self._in[source] = self._in.get(source, 0) + count
        self._metrics.events_in.labels(source=source).inc(count)
        self._metrics.queue_depth.set(self._size)

    def close(self) -> None:
        """Refuse every further ``offer`` (shutdown)."""
        self._closed = True

    # --- taking -------------------------------------------------------------------------
    async def get_batch(self, limit: int) -> Batch:
        """Up to ``limit`` events from the oldest batch, with its source, input and arrival
        (waits while the queue is empty). Finish them with :meth:`done_many`."""
        while not self._entries:
            await self._wait(self._getters)
        entry = self._entries[0]
        start, events = entry.next, entry.events
        end = min(len(events), start + limit)
        if end == len(events):
            self._entries.popleft()
        entry.next = end
        taken = events if start == 0 and end == len(events) else events[start:end]
        self._size -= end - start
        _wake(self._putters, every=True)
        if self._entries:
            _wake(self._getters)
        return entry.source, entry.input, entry.arrived, taken

    def done_many(self, source: str, count: int) -> None:
        """``count`` events of ``source`` taken with :meth:`get_batch` are finished."""
        if count:
            self._done[source] = self._done.get(source, 0) + count
            self._finish(count)

    async def get(self) -> Incoming:
        return (await self.get_item())[3]

    async def get_item(self) -> Item:
        """The next ``(source, input, arrival_ns, event)``; finish it with :meth:`done`."""
        source, input, arrived, events = await self.get_batch(1)
        self._taken.append(source)
        return source, input, arrived, events[0]

    def get_nowait(self) -> Incoming:
        """The next event without waiting; ``asyncio.QueueEmpty`` when there is none."""
        if not self._entries:
            raise asyncio.QueueEmpty
        entry = self._entries[0]
        event = entry.events[entry.next]
        entry.next += 1
        if entry.next == len(entry.events):
            self._entries.popleft()
        self._size -= 1
        _wake(self._putters, every=True)
        self._taken.append(entry.source)
        return event

    def get_item_nowait(self) -> Item:
        """:meth:`get_item` without waiting; ``asyncio.QueueEmpty`` when there is none."""
        if not self._entries:
            raise asyncio.QueueEmpty
        entry = self._entries[0]
        return entry.source, entry.input, entry.arrived, self.get_nowait()

    def done(self) -> None:
        """The oldest event taken with :meth:`get` is finished (processed, or relayed)."""
        source = self._taken.popleft()
        self._done[source] = self._done.get(source, 0) + 1
        self._finish(1)

    def _finish(self, count: int) -> None:
        self._unfinished -= count
        if self._unfinished <= 0:
            self._finished.set()
        self._metrics.queue_depth.set(self._size)

    # --- progress -----------------------------------------------------------------------
    def waiting(self, source: str) -> int:
        """Events of ``source`` accepted but not yet done."""
        return self._in.get(source, 0) - self._done.get(source, 0)

    def processed(self, source: str) -> int:
        """How many events of ``source`` are done, since start."""
        return self._done.get(source, 0)

    async def drained(self) -> None:
        """Return once every accepted event is done."""
        await self._finished.wait()

    def __len__(self) -> int:
        return self._size

    async def _wait(self, waiters: deque[asyncio.Future[None]]) -> None:
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            waiter.cancel()
            if waiter in waiters:
                waiters.remove(waiter)
            elif not waiter.cancelled():
                _wake(waiters)  # woken and cancelled at once: pass the wake-up on
            raise


def _wake(waiters: deque[asyncio.Future[None]], every: bool = False) -> None:
    """Wake the first waiter still waiting, or ``every`` one (each checks again for
    itself: a batch taken may free room for several emitters)."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            if not every:
                return
