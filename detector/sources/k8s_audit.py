"""``POST /k8s-audit``: the API server's audit webhook backend.

The API server posts an ``audit.k8s.io/v1`` ``EventList`` (batch mode: up to 400
events, up to 30 s late by default) and retries the whole batch on a non-2xx answer.
So only a problem with the *document* gets a 400 (malformed JSON, not an EventList,
an apiVersion we do not speak); a bad *item* is counted by reason and skipped while the
rest of the batch is accepted — a 400 would make the API server resend, and lose, the
lot. A batch with more items than the queue can ever hold is a 413, one with more items
than it has room for now a 429, both before any item is decoded. Items are decoded from
the body bytes (:mod:`detector.parse.bodies`) in slices of :data:`SLICE`, yielding to
the event loop between slices, so a 100k-item batch does not stall ``/healthz`` or the
other receivers. With the rules' early reject
(:mod:`detector.parse.early`, given by ``detector run``) an event no rule, binding or
allowlist entry can use skips normalization and is queued as a time-only tick: it still
counts as accepted and still moves the sender's event time; a request made with a pod's
token that only a foreign-source-IP step may want is queued as a
:class:`~correlation.event.Claim` (its item's JSON kept), which the engine decides when
it takes it (``Engine.claimed``) and normalizes only when it matters. Enqueue-or-refuse happens in
the shared server: the API server never waits on correlation. The intake log keeps the
body as it arrived, and its replay decodes it again with :func:`audit_body_events` (the
same items, the same early reject, the same events).
"""

from __future__ import annotations

import asyncio
from typing import Final

import msgspec
from msgspec import Raw

from correlation.event import Event, Incoming
from detector.errors import ParseError, SkippedInput
from detector.parse.audit import AuditEvent, normalize_audit
from detector.parse.bodies import audit_item, event_list_items, item_decoder
from detector.parse.early import EarlyReject, Json
from detector.sources.http_server import Decoded, NoRoom, RequestRejected, bad_document

PATH: Final = "/k8s-audit"
SLICE: Final = 256  # items decoded between two yields (~1-2 ms of work)


class K8sAuditReceiver:
    """Decodes an audit ``EventList`` into events, item by item."""

    name = "k8s_audit"
    path = PATH

    def __init__(self, max_body_bytes: int, early: EarlyReject | None = None) -> None:
        """``early``: the rules' early reject (an event none can use becomes a tick)."""
        self.max_body_bytes, self._early = max_body_bytes, early

    async def decode(self, body: bytes, max_events: int, room: int) -> Decoded:
        try:
            items = event_list_items(body)
        except ParseError as exc:
            raise bad_document(exc) from None
        if len(items) > max_events:
            raise RequestRejected(
                413, "too_many_events", f"{len(items)} items; the queue holds {max_events}"
            )
        if len(items) > room:
            raise NoRoom(len(items))  # 429 before any item is decoded
        decoded = Decoded([], body=body)
        for start in range(0, len(items), SLICE):
            if start:
                await asyncio.sleep(0)
            _add_all(decoded, items[start : start + SLICE], self._early)
        return decoded


def audit_body_events(body: bytes, early: EarlyReject | None = None) -> list[Incoming]:
    """The events of an EventList body as :meth:`K8sAuditReceiver.decode` makes them, in
    one go (the intake log's replay); bad items are left out as there, uncounted (they
    were counted when the body arrived). :class:`ParseError` when the document is bad."""
    decoded = Decoded([])
    _add_all(decoded, event_list_items(body), early)
    return decoded.events


def _add_all(decoded: Decoded, items: list[bytes | Raw], early: EarlyReject | None) -> None:
    """The items' events, one call each on the common path (this loop is per event)."""
    convert = _normalized if early is None else early.claiming.audit
    decode, append = item_decoder.decode, decoded.events.append
    rejected, skipped = decoded.rejected, decoded.skipped
    for item in items:
        try:
            append(convert(decode(item), item))
        except SkippedInput as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
        except ParseError as exc:
            rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            _add(decoded, item, early)  # decoded again, to name the reason


def _normalized(event: AuditEvent, _data: Json) -> Event:
    return normalize_audit(event)  # no rules here (a relay): everything is normalized


def _add(decoded: Decoded, item: bytes | Raw, early: EarlyReject | None) -> None:
    event: Event
    try:
        event = audit_item(item, early)
    except SkippedInput as exc:
        decoded.skipped[exc.reason] = decoded.skipped.get(exc.reason, 0) + 1
        return
    except ParseError as exc:
        decoded.rejected[exc.reason] = decoded.rejected.get(exc.reason, 0) + 1
        return
    decoded.events.append(event)
