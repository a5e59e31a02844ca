"""A bounded reorder buffer that absorbs the small disorder of real captures.

Semantics are those of a sliding min-heap of ``size`` events: once the buffer is full,
each arriving event pushes out the earliest buffered one (ties: arrival order). Events
later than the whole buffer can hold are passed on out of order and left to the engine's
lateness handling, which counts them.

Fed in batches, most of a time-ordered capture takes a fast path with no per-event heap
work. When a batch of ``k <= size`` events starts no earlier than the latest buffered
event, the heap would emit exactly the ``k`` earliest buffered events and keep the rest
plus the batch, so the buffer is kept as a list sorted by time (a sorted list is also a
valid heap) and the batch is appended::

    buffered (sorted)          batch (all >= buffered[-1])
    [e1 e2 e3 ... eN]    +     [b1 b2 ... bk]   →   emit e1..ek, keep ek+1..eN b1..bk

Any other batch goes event by event through a real heap, which is re-sorted afterwards.
"""

from __future__ import annotations

import heapq
from operator import attrgetter
from typing import Final

from correlation.event import Event

_TIME: Final = attrgetter("time_ns")


class Reorder:
    """Re-sorts events within a sliding buffer of ``size`` (stable for equal times)."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self._held: list[Event] = []  # sorted by time; equal times in arrival order

    def push(self, batch: list[Event]) -> list[Event]:
        """Add a batch (in arrival order); returns the events pushed out, in order."""
        if len(batch) > self.size:
            out: list[Event] = []
            for start in range(0, len(batch), self.size):
                out += self.push(batch[start : start + self.size])
            return out
        ordered = sorted(batch, key=_TIME)  # stable: arrival order within equal times
        held = self._held
        if ordered and held and ordered[0].time_ns < held[-1].time_ns:
            return self._push_slow(batch)
        held += ordered
        excess = len(held) - self.size
        if excess <= 0:
            return []
        out = held[:excess]
        del held[:excess]
        return out

    def drain(self) -> list[Event]:
        """End of input: everything still buffered, in order."""
        held, self._held = self._held, []
        return held

    def _push_slow(self, batch: list[Event]) -> list[Event]:
        # (time, arrival number, event): the buffered events keep their relative order,
        # and the batch's numbers are larger than all of theirs.
        heap = [(event.time_ns, seq, event) for seq, event in enumerate(self._held)]
        out: list[Event] = []
        for seq, event in enumerate(batch, start=len(heap)):
            item = (event.time_ns, seq, event)
            if len(heap) < self.size:
                heapq.heappush(heap, item)
            else:
                out.append(heapq.heappushpop(heap, item)[2])
        heap.sort()
        self._held = [item[2] for item in heap]
        return out
