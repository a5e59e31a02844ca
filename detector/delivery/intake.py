"""The pushed inputs' door to the queue: room, all-or-none offer, and the commit before 2xx.

The HTTP receivers (and any other pushed input) never wait for queue space: they ask
:meth:`Intake.room` before reading a body, :meth:`Intake.offer` a decoded batch whole or
not at all, and await :meth:`Intake.committed` before they acknowledge it.
"""

from __future__ import annotations

from collections.abc import Sequence

from correlation.event import Event
from detector.pipeline import EventQueue


class Intake:
    """The queue as pushed inputs see it."""

    def __init__(self, queue: EventQueue) -> None:
        self._queue = queue

    @property
    def capacity(self) -> int:
        return self._queue.capacity

    def room(self) -> int:
        return self._queue.room()

    def offer(self, source: str, events: Sequence[Event], input: str = "") -> bool:
        """All of ``events`` or none; ``input`` names the sender (detector.event_time)."""
        return self._queue.offer(source, events, input)

    async def committed(self) -> None:
        """Return once every offered event is as durable as this intake makes it."""
        return None
