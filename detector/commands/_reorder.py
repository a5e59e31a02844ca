"""A bounded reorder buffer that absorbs the small disorder of real captures.

Semantics are those of a sliding min-heap of ``size`` events: once the buffer is full,
each arriving event pushes out the earliest buffered one (ties: arrival order). An event
older than one already pushed out is passed on out of order; :attr:`Reorder.worst_ns`
says by how much at most, so the replay can tell when a file needs a real sort.

The buffer has two shapes and switches between them as the input demands:

* *sorted* — a list sorted by time (a sorted list is also a valid heap). A batch of
  ``k <= size`` events that starts no earlier than the latest buffered event only
  appends; the heap would emit exactly the ``k`` earliest, so they are sliced off::

      buffered (sorted)          batch (all >= buffered[-1])
      [e1 e2 e3 ... eN]    +     [b1 b2 ... bk]   →   emit e1..ek, keep ek+1..eN b1..bk

* *heap* — ``time << 40 | arrival number`` keys in a persistent heap of plain ints, one
  ``heappushpop`` per event, the events in a dict by key (an int compares faster than a
  ``(key, event)`` tuple, and the dict costs less than the tuples' compares on a heap of
  10,000). Entered when a batch does not fit
  the sorted shape; left (one sort) when an ordered batch comes again, so an ordered
  capture stays on the fast path and a disordered one never re-sorts per batch.

With ``pass_ns`` the buffer starts *open*: events go straight through in arrival order
while none lags more than ``pass_ns`` behind the latest time seen before it, and the
first one that does turns the buffer on (from that event, for the rest of the stream).
The replay opens it for disorder within half the engine's lateness: the engine's
watermark absorbs that on its own (the chains do not depend on arrival order within
the lateness), and holding 10,000 events only to release them in another order than
they were allocated cost more than the sorting (2e5 disordered stream: 4.5 s → 3.6 s
CPU for the whole replay, the same chains byte for byte). :attr:`Reorder.worst_ns`
counts what passed through open too, so more disorder than the lateness still makes
the replay sort the file on disk.
"""

from __future__ import annotations

import heapq
from itertools import count
from operator import attrgetter
from typing import Final, Generic, Protocol, TypeVar

_TIME: Final = attrgetter("time_ns")
_SHIFT: Final = 40  # arrival numbers wrap after 2**40 events (ties only)
_NUMBERS: Final = (1 << _SHIFT) - 1


class Timed(Protocol):
    """What the buffer orders: anything with an event time (an Event, a Claim)."""

    @property
    def time_ns(self) -> int: ...


E = TypeVar("E", bound=Timed)


class Reorder(Generic[E]):
    """Re-sorts events within a sliding buffer of ``size`` (stable for equal times)."""

    def __init__(self, size: int, pass_ns: int | None = None) -> None:
        self.size = max(size, 1)
        self._pass_ns = pass_ns  # open while set (see the module docstring)
        self._held: list[E] = []  # the sorted shape: by time, ties in arrival order
        self._heap: list[int] = []  # the heap shape (only one of the two is in use) ...
        self._by_key: dict[int, E] = {}  # ... and its events by key (unique keys)
        self._seq = count()
        self._max_held = -(1 << 62)  # latest time buffered (heap shape)
        self._last_out = -(1 << 62)  # latest time pushed out
        self.worst_ns = 0  # largest amount by which an event came out older than one before

    def push(self, batch: list[E]) -> list[E]:
        """Add a batch (in arrival order); returns the events pushed out, in order."""
        if self._pass_ns is not None:
            return self._pass(batch, self._pass_ns)
        if len(batch) > self.size:
            out: list[E] = []
            for start in range(0, len(batch), self.size):
                out += self.push(batch[start : start + self.size])
            return out
        ordered = sorted(batch, key=_TIME)  # stable: arrival order within equal times
        if ordered and self._heap:
            if ordered[0].time_ns < self._max_held:
                return self._push_heap(batch)
            self._to_sorted()
        held = self._held
        if ordered and held and ordered[0].time_ns < held[-1].time_ns:
            self._to_heap()
            return self._push_heap(batch)
        held += ordered
        excess = len(held) - self.size
        if excess <= 0:
            return []
        out = held[:excess]
        del held[:excess]
        self._emitted(out[0].time_ns, out[-1].time_ns)
        return out

    def _pass(self, batch: list[E], pass_ns: int) -> list[E]:
        """The open buffer: the batch as it came, up to the first event lagging more than
        ``pass_ns``; from there on the buffer is on (:meth:`push`)."""
        last_out, worst = self._last_out, self.worst_ns
        for at, event in enumerate(batch):
            time_ns = event.time_ns
            if time_ns >= last_out:
                last_out = time_ns
                continue
            lag = last_out - time_ns
            if lag > pass_ns:
                self._last_out, self.worst_ns, self._pass_ns = last_out, worst, None
                return batch[:at] + self.push(batch[at:])
            if lag > worst:
                worst = lag
        self._last_out, self.worst_ns = last_out, worst
        return batch

    def drain(self) -> list[E]:
        """End of input: everything still buffered, in order."""
        self._to_sorted()
        held, self._held = self._held, []
        if held:
            self._emitted(held[0].time_ns, held[-1].time_ns)
        return held

    def _emitted(self, first_ns: int, last_ns: int) -> None:
        if first_ns < self._last_out:
            self.worst_ns = max(self.worst_ns, self._last_out - first_ns)
        self._last_out = max(self._last_out, last_ns)

    def _to_heap(self) -> None:
        # sorted by time with ties in arrival order: numbering in list order keeps both,
        # and a sorted list of entries is already a heap
        seq = self._seq
        self._by_key = {
            event.time_ns << _SHIFT | (next(seq) & _NUMBERS): event for event in self._held
        }
        self._heap = list(self._by_key)
        self._max_held = self._held[-1].time_ns if self._held else -(1 << 62)
        self._held = []

    def _to_sorted(self) -> None:
        if self._heap:
            self._heap.sort()
            self._held = list(map(self._by_key.__getitem__, self._heap))
            self._heap, self._by_key = [], {}

    def _push_heap(self, batch: list[E]) -> list[E]:
        heap, seq, size, by_key = self._heap, self._seq, self.size, self._by_key
        out: list[E] = []
        emit, pushpop, take = out.append, heapq.heappushpop, by_key.pop
        last_out, worst, max_held = self._last_out, self.worst_ns, self._max_held
        for event in batch:
            time_ns = event.time_ns
            if time_ns > max_held:
                max_held = time_ns
            key = time_ns << _SHIFT | (next(seq) & _NUMBERS)
            by_key[key] = event
            if len(heap) < size:
                heapq.heappush(heap, key)
                continue
            gone = take(pushpop(heap, key))
            if gone.time_ns < last_out:
                worst = max(worst, last_out - gone.time_ns)
            else:
                last_out = gone.time_ns
            emit(gone)
        self._last_out, self.worst_ns, self._max_held = last_out, worst, max_held
        return out
