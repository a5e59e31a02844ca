"""Auto-detection: one JSON document or line → the events it holds.

One decode pass per document: :class:`_Document` is the union of every shape we accept
(a Falco alert, an audit ``Event``, an ``EventList``, an AKS diagnostic record), and which
fields came back set tells which shape it was. Unknown fields are skipped by msgspec
without being materialized, which is where most of the speed comes from.

Envelopes:

* ``EventList`` (the audit webhook's POST body, one per line in a capture file): every
  item is decoded on its own, so one bad item costs one event, not the batch.
* AKS diagnostic logs (``category: kube-audit*``): the audit Event sits in
  ``properties.log``, as an object or as a JSON string; both are unwrapped.
* GKE Cloud Audit Logs (``protoPayload``) are refused with ``unsupported_envelope``: they
  are a different schema (no auditID/stage, a gRPC status code instead of the HTTP one, no
  bound-token extras), so mapping them would invent the very fields correlation joins on.
"""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from correlation.event import Event
from detector.errors import ParseError, SkippedInput
from detector.parse.audit import AuditEvent, normalize_audit
from detector.parse.early import Converter
from detector.parse.falco import FalcoAlert, FieldValue, ProtoTime, normalize_falco
from detector.parse.limits import MAX_DOCUMENT_BYTES, MAX_ITEMS

T = TypeVar("T")


class _AksProperties(msgspec.Struct, gc=False):
    log: msgspec.Raw = msgspec.Raw(b"")


class _Document(AuditEvent, gc=False):
    """Every top-level field any accepted shape uses (audit fields are inherited)."""

    # Falco alert (``time`` is also the AKS record's time; ProtoTime: protobuf-JSON alerts)
    time: str | ProtoTime = ""
    rule: str = ""
    priority: str = ""
    output_fields: dict[str, FieldValue] = {}
    source: str = ""
    hostname: str = ""
    tags: list[str] = []
    uuid: str = ""
    # EventList
    items: list[msgspec.Raw] = []
    # provider envelopes
    protoPayload: msgspec.Raw = msgspec.Raw(b"")
    properties: _AksProperties | None = None
    category: str = ""


_document_decoder: Final = msgspec.json.Decoder(_Document)
_event_decoder: Final = msgspec.json.Decoder(AuditEvent)
_string_decoder: Final = msgspec.json.Decoder(str)


def parse_document(
    data: bytes,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    errors: list[ParseError] | None = None,
    early: Converter[T] | None = None,
) -> list[Event | T]:
    """The events in one JSON document: a Falco alert, an audit Event or an EventList.

    Raises :class:`ParseError` for a bad document. For an EventList, a bad item raises
    too unless ``errors`` is given: then it is appended there and the other items kept.
    With ``early``, events no loaded rule can use come back as time-only ticks.
    """
    if len(data) > max_bytes:
        raise ParseError("too_large", f"document of {len(data)} bytes exceeds {max_bytes}")
    return _events(_decode(_document_decoder, data), data, errors, early)


def parse_line(
    line: bytes, errors: list[ParseError] | None = None, early: Converter[T] | None = None
) -> list[Event | T]:
    """The events on one line of a JSON-lines file; a blank line holds none.

    The document limit applies, not a smaller line limit: a webhook capture holds a whole
    EventList (up to the API server's 10 MiB batch) on one line.
    """
    events: list[Event | T] = []
    parse_line_into(events, line, errors, early)
    return events


def parse_line_into(
    events: list[Event | T],
    line: bytes,
    errors: list[ParseError] | None = None,
    early: Converter[T] | None = None,
) -> None:
    """:func:`parse_line`, appending the line's events to ``events`` (nothing when it
    raises). This runs once per line of a replay, so no list is made per line, the
    decode is inlined and a blank line is recognised only after it failed to decode (no
    copy of every line to strip it)."""
    if len(line) > MAX_DOCUMENT_BYTES:
        raise ParseError("too_large", f"document of {len(line)} bytes exceeds {MAX_DOCUMENT_BYTES}")
    try:
        doc = _document_decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        if not line.strip():
            return
        doc = _decode(_document_decoder, line)  # raises the mapped ParseError
    if early is not None and doc.auditID and doc.kind != "EventList":
        events.append(early.audit(doc, line))  # _events' commonest case, without the call
    else:
        events += _events(doc, line, errors, early)


def _events(
    doc: _Document, data: bytes, errors: list[ParseError] | None, early: Converter[T] | None
) -> list[Event | T]:
    """Dispatch on the shape that came back (see the module docstring); ``data``: the
    document's JSON."""
    if doc.kind == "EventList":
        return _event_list(doc, errors, early)
    if doc.auditID or doc.kind == "Event":
        return [early.audit(doc, data) if early is not None else normalize_audit(doc)]
    if doc.rule or doc.priority or doc.output_fields:
        alert = _falco(doc)
        return [early.falco(alert) if early is not None else normalize_falco(alert)]
    return [_envelope(doc, early)]


def _decode(decoder: msgspec.json.Decoder[T], data: bytes) -> T:
    """Decode, mapping every failure msgspec or the runtime can raise to a ParseError."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        # msgspec < 0.19 let UnicodeDecodeError through; later versions report bad UTF-8 as
        # a DecodeError whose wording has changed between releases. Asking the bytes
        # themselves (only on this error path) gives the same answer on every version.
        if not _is_utf8(data):
            raise ParseError("bad_encoding", "input is not valid UTF-8") from None
        raise ParseError("malformed_json", str(exc)) from None
    except UnicodeDecodeError:
        raise ParseError("bad_encoding", "input is not valid UTF-8") from None
    except RecursionError:
        raise ParseError("too_deep", "JSON nesting too deep") from None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _validation_error(text: str) -> ParseError:
    if text.startswith("Expected `object`") and " - at `$" not in text:
        return ParseError("not_an_object", f"top-level JSON value is not an object ({text})")
    if text.startswith("Object missing required field"):
        return ParseError("missing_field", text)
    return ParseError("bad_type", text)


def _event_list(
    doc: _Document, errors: list[ParseError] | None, early: Converter[T] | None
) -> list[Event | T]:
    if doc.apiVersion not in ("audit.k8s.io/v1", "audit.k8s.io/v1beta1", ""):
        raise ParseError("unknown_api_version", f"EventList apiVersion {doc.apiVersion[:40]!r}")
    if len(doc.items) > MAX_ITEMS:
        raise ParseError("too_large", f"EventList of {len(doc.items)} items exceeds {MAX_ITEMS}")
    events: list[Event | T] = []
    for item in doc.items:
        try:
            event = _decode(_event_decoder, item)
            events.append(early.audit(event, item) if early is not None else normalize_audit(event))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return events


def _falco(doc: _Document) -> FalcoAlert:
    if doc.rule.startswith("Falco internal:"):  # metrics snapshots carry no time or priority
        raise SkippedInput("falco_internal", f"Falco internal alert {doc.rule[:80]!r}")
    for name in ("time", "rule", "priority"):
        if not getattr(doc, name):
            raise ParseError("missing_field", f"Falco alert: missing {name!r}")
    return FalcoAlert(
        time=doc.time,
        rule=doc.rule,
        priority=doc.priority,
        output_fields=doc.output_fields,
        source=doc.source,
        hostname=doc.hostname,
        tags=doc.tags,
        uuid=doc.uuid,
    )


def _envelope(doc: _Document, early: Converter[T] | None) -> Event | T:
    if doc.protoPayload:
        raise ParseError(
            "unsupported_envelope",
            "GKE Cloud Audit Log record (protoPayload): no auditID, stage or bound-token "
            "user info; export the API server's audit.k8s.io Events instead",
        )
    if doc.properties is not None and doc.properties.log:
        event, data = _aks_event(doc.properties.log)
        return normalize_audit(event) if early is None else early.audit(event, data)
    raise ParseError("unknown_format", "neither a Falco alert nor an audit Event/EventList")


def _aks_event(log: msgspec.Raw) -> tuple[AuditEvent, bytes]:
    """AKS puts the audit Event in ``properties.log``: an object, or JSON in a string
    (the Event and its JSON)."""
    raw = bytes(log)
    if raw[:1] == b'"':
        raw = _decode(_string_decoder, raw).encode()
    event = _decode(_event_decoder, raw)
    if not event.auditID:
        raise ParseError("unknown_format", "AKS record whose properties.log is not an audit Event")
    return event, raw
