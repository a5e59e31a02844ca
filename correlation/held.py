"""Container-only Falco alerts held back until their pod is known.

Upstream Falco rules often report only ``container.id``. Such an alert cannot join
anything until another alert ties the container to its pod, and that teacher may
arrive later (another node, another batch). :class:`HeldAlerts` keeps these alerts,
at most ``max_pending`` of them, for ``lateness`` of event time::

    held at t ──────── lateness ────────┐
      released early when a teacher     released as-is (unresolved) once
      for its container arrives         the watermark passes t + lateness

While an alert is held, the engine's *settled* time cannot pass it (see
``engine.py``), so holding never changes which chains are confirmed, only when.
This class only keeps the books; the engine offers what it hands back.
"""

from __future__ import annotations

import heapq
from itertools import count
from typing import Final

from correlation.event import FALCO, Event
from correlation.identity import Resolver

NOTHING: Final[tuple[Event, ...]] = ()


def must_hold(event: Event) -> bool:
    """A Falco alert with a container id but no pod (not the host)."""
    actor = event.actor
    return (
        event.source == FALCO
        and not actor.pod
        and bool(actor.container_id)
        and actor.container_id != "host"
    )


class HeldAlerts:
    """Held alerts by container id, plus a heap by event time for release and caps."""

    def __init__(self, max_pending: int, hold_ns: int) -> None:
        self.max_pending = max_pending
        self.hold_ns = hold_ns
        self._by_container: dict[str, list[Event]] = {}
        self._heap: list[tuple[int, int, str, Event]] = []
        self._seq = count()
        self.count = 0

    @property
    def oldest_ns(self) -> int | None:
        """Event time of the oldest held alert (``None`` when nothing is held)."""
        return self._heap[0][0] if self._heap else None

    def events(self) -> list[Event]:
        """Every held alert (for snapshots)."""
        return [e for events in self._by_container.values() for e in events]

    def hold(self, event: Event) -> Event | None:
        """Hold ``event``; when over the cap, the oldest alert comes back to be offered."""
        evicted = None
        while self.count >= self.max_pending and evicted is None:
            _, _, cid, oldest = heapq.heappop(self._heap)
            if self._unhold(cid, oldest):  # skip heap entries already released
                evicted = oldest
        cid = event.actor.container_id
        self._by_container.setdefault(cid, []).append(event)
        heapq.heappush(self._heap, (event.time_ns, next(self._seq), cid, event))
        self.count += 1
        return evicted

    def release(self, teacher: Event, resolver: Resolver) -> list[Event]:
        """Alerts of the teacher's container whose pod is now known, resolved."""
        held = self._by_container.get(teacher.actor.container_id)
        if not held or teacher.source != FALCO:
            return []
        out = []
        for event in list(held):
            resolved = resolver.resolve(event)
            if resolved.actor.pod and self._unhold(event.actor.container_id, event):
                out.append(resolved)
        self._clean_heap()
        return out

    def expired(self, watermark_ns: int) -> list[Event]:
        """Alerts held for ``hold_ns`` as of ``watermark_ns`` (unresolved, oldest first)."""
        out = []
        heap = self._heap
        while heap and heap[0][0] + self.hold_ns <= watermark_ns:
            _, _, cid, event = heapq.heappop(heap)
            if self._unhold(cid, event):
                out.append(event)
        return out

    def drain(self) -> list[Event]:
        """End of input: every held alert, and the books cleared."""
        out = self.events()
        self._by_container.clear()
        self._heap.clear()
        self.count = 0
        return out

    def _unhold(self, container_id: str, event: Event) -> bool:
        held = self._by_container.get(container_id)
        if not held or event not in held:
            return False
        held.remove(event)
        if not held:
            del self._by_container[container_id]
        self.count -= 1
        return True

    def _clean_heap(self) -> None:
        heap = self._heap
        while heap and heap[0][3] not in self._by_container.get(heap[0][2], NOTHING):
            heapq.heappop(heap)
