"""The one interface every source implements.

A source turns what arrives (a gRPC stream, HTTP POSTs, a tailed file) into normalized
:class:`correlation.event.Event` values (or the early reject's ticks and claims) and
hands them to ``emit``. ``emit`` awaits when
the engine's bounded queue is full, which is how backpressure reaches the sender.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from correlation.event import Incoming

# an Event (or a time-only tick), or a Claim the engine decides on (a tailed audit file)
Emit = Callable[[Incoming], Awaitable[None]]


class Source(Protocol):
    """A long-running producer of events, owned by the supervisor's task group."""

    name: str

    async def run(self, emit: Emit) -> None:
        """Produce events until cancelled; never return on a transient failure."""
        ...

    def ready(self) -> bool:
        """True once connected or listening (feeds ``/readyz``)."""
        ...
