"""Request bodies of the live receivers, decoded straight from bytes with msgspec.

Into the same structs replay uses (:class:`~detector.parse.falco.FalcoAlert`,
:class:`~detector.parse.audit.AuditEvent`), with no dict in between, and through the same
early reject (:class:`~detector.parse.early.EarlyReject`) when ``detector run`` gives one.
A Falco alert is one pass (:func:`falco_body`). An audit ``EventList`` is decoded once as
a document, with every item kept as undecoded :class:`msgspec.Raw` bytes (cheap, and the
caller can count the items before paying for any of them), then one item at a time, so
one bad item costs one item.

One hostile item can still break the first pass: msgspec refuses a value nested more
than about a thousand levels deep even while skipping it as ``Raw``. Then
:func:`_split` finds the item boundaries with a non-recursive scan (strings and
brackets only), the document is checked with its items emptied, and the deep item fails
alone with reason ``too_deep``.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from correlation.event import Event
from detector.errors import ParseError
from detector.parse.audit import AuditEvent, normalize_audit
from detector.parse.document import _decode
from detector.parse.early import EarlyReject
from detector.parse.falco import FalcoAlert, normalize_falco

API_VERSIONS: Final = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
# A JSON string (escapes included) or one structural character.
_TOKEN: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


class _EventList(msgspec.Struct, gc=False):
    apiVersion: str = ""
    kind: str = ""
    items: list[msgspec.Raw] | None = None


_list_decoder: Final = msgspec.json.Decoder(_EventList)
item_decoder: Final = msgspec.json.Decoder(AuditEvent)
_falco_decoder: Final = msgspec.json.Decoder(FalcoAlert)


def falco_body(data: bytes, early: EarlyReject | None = None) -> Event:
    """One Falco alert body as an Event; :class:`ParseError` (or SkippedInput) when bad.
    With ``early``, an alert no loaded rule can use comes back as a time-only tick."""
    alert = _decode(_falco_decoder, data)
    return normalize_falco(alert) if early is None else early.falco(alert)


def event_list_items(data: bytes) -> list[bytes | msgspec.Raw]:
    """The undecoded items of an EventList body; :class:`ParseError` when the document
    itself is broken (malformed, not an object, another apiVersion or kind)."""
    try:
        doc = _decode(_list_decoder, data)
        items: list[bytes | msgspec.Raw] = list(doc.items or [])
    except ParseError as exc:
        if exc.reason != "too_deep":
            raise
        stub, found = _split(data)
        doc = _decode(_list_decoder, stub)
        items = list(found)
    _check(doc)
    return items


def audit_item(item: bytes | msgspec.Raw, early: EarlyReject | None = None) -> Event:
    """One EventList item as an Event; :class:`ParseError` (or SkippedInput) when bad.
    With ``early``, an event no loaded rule can use comes back as a time-only tick."""
    event = _decode(item_decoder, item)
    return normalize_audit(event) if early is None else early.audit(event)


def _check(doc: _EventList) -> None:
    if doc.apiVersion not in API_VERSIONS:
        raise ParseError(
            "unknown_api_version", f"apiVersion {doc.apiVersion[:40]!r}; expected audit.k8s.io/v1"
        )
    if doc.kind != "EventList":
        raise ParseError("not_an_event_list", f"kind {doc.kind[:40]!r}")


def _split(data: bytes) -> tuple[bytes, list[bytes]]:
    """(the document with ``items`` emptied, the items' bytes), scanning without recursion.

    Only the top-level ``"items"`` array is cut; anything else too deep stays in the stub
    and fails its decode (the document is broken, not an item).
    """
    depth, previous, key = 0, b"", b""
    opened = start = -1
    items: list[bytes] = []
    for match in _TOKEN.finditer(data):
        token, at = match.group(), match.start()
        if token in (b"[", b"{"):
            depth += 1
            if depth == 2 and token == b"[" and previous == b":" and key == b'"items"':
                opened = start = match.end()
        elif token in (b"]", b"}"):
            if depth == 2 and opened >= 0 and token == b"]":
                _add(items, data[start:at])
                return data[:opened] + data[at:], items
            depth -= 1
        elif token == b"," and depth == 2 and opened >= 0:
            _add(items, data[start:at])
            start = match.end()
        elif token == b":" and depth == 1:
            key = previous
        previous = token
    raise ParseError("malformed_json", "EventList: no complete items array")


def _add(items: list[bytes], item: bytes) -> None:
    if item.strip():
        items.append(item)
