"""How far a relay has settled the logged events it took, in the queue's order.

With the intake log in ``mode: relay`` the log's covered seq is not "events taken" but
"events settled": forwarded (the correlator or the broker acknowledged them) or given up
for good (counted drops). Events settle out of order — a container-only alert waits in
the resolver while later events go out — so the covered seq is the settled *prefix*:
the logged events before the oldest one not yet settled::

    taken, oldest first:  a✓ b✓ c… d✓ e✓      (c held by the resolver)
    settled prefix:       a b                  → covered = base + 2 logged ones

:class:`Settlement` keeps one slot per taken event (bounded by the queue and the
resolver's ``max_held``), found again by the event's id and time: the resolver hands back
a *copy* with the pod filled in, never the object taken. Two unsettled events with the
same id and time share a key; settling one marks the newer slot, so the prefix can stop
early there (a repeat after a restart) but never pass an event still held.
:meth:`Settlement.logged` is what :class:`~detector.delivery.intake.Intake` counts
instead of the queue's processed events when a relay settles them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from correlation.event import Event


class _Slot:
    __slots__ = ("logged", "settled")

    def __init__(self, logged: bool) -> None:
        self.logged, self.settled = logged, False


class Settlement:
    """Taken events in order, which of them are logged, and which are settled."""

    def __init__(self, is_logged: Callable[[str], bool]) -> None:
        self._is_logged = is_logged
        self._order: deque[_Slot] = deque()
        self._slots: dict[tuple[str, int], list[_Slot]] = {}  # taken, not settled, by key
        self._logged = 0

    def took(self, source: str, event: Event) -> None:
        slot = _Slot(self._is_logged(source))
        self._order.append(slot)
        self._slots.setdefault(_key(event), []).append(slot)

    def pending(self, event: Event) -> bool:
        """Whether ``event`` was taken and is not settled yet."""
        return _key(event) in self._slots

    def is_logged(self, event: Event) -> bool:
        """Whether a taken, unsettled ``event`` is in the intake log (kept for a restart)."""
        slots = self._slots.get(_key(event))
        return slots is not None and slots[-1].logged

    def settle(self, events: Iterable[Event]) -> None:
        """``events`` are forwarded or given up: the prefix may move."""
        for event in events:
            key = _key(event)
            slots = self._slots.get(key)
            if slots is None:
                continue
            slots.pop().settled = True
            if not slots:
                del self._slots[key]
        order = self._order
        while order and order[0].settled:
            self._logged += order.popleft().logged

    def logged(self) -> int:
        """Logged events settled in the prefix, since start."""
        return self._logged


def _key(event: Event) -> tuple[str, int]:
    return event.id, event.time_ns
