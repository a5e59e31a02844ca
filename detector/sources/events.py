"""``POST /events``: batches of normalized events from relay-mode sidecars.

The body is an ``events/v1`` batch (:mod:`detector.relay.wire`). It goes through the
same shared server as ``/falco`` and ``/k8s-audit`` — bearer token, mTLS, size cap,
400 with a JSON reason, enqueue-or-refuse (429 + Retry-After) — so a relay that finds
the correlator busy simply retries later. A batch is accepted whole or not at all: one
invalid event makes the batch a 400, because it means the sender speaks another version
and silently dropping part of a batch would hide that.

A batch larger than the correlator's whole queue could never be accepted, so it gets a
413 ``too_many_events`` at once; the relay answers a 413 by splitting the batch.
"""

from __future__ import annotations

from typing import Final

from correlation.event import Incoming
from detector.relay.wire import WireError, decode
from detector.sources.http_server import Decoded, RequestRejected

PATH: Final = "/events"


class EventsReceiver:
    """Decodes one relay batch per request body."""

    name = "events"
    path = PATH

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def decode(self, body: bytes, max_events: int, room: int) -> Decoded:
        try:
            events = decode(body)
        except WireError as exc:
            raise RequestRejected(400, exc.reason, str(exc)) from None
        if len(events) > max_events:
            raise RequestRejected(
                413, "too_many_events", f"{len(events)} events; the queue holds {max_events}"
            )
        return Decoded(list[Incoming](events))
