"""The event batch both relay transports carry: ``events/v1`` (msgspec JSON).

One batch is a JSON object with a schema tag and a list of :class:`correlation.event.Event`
encoded field by field (defaults omitted, as the struct declares)::

    {"schema": "lateral-chain-detector/events/v1",
     "events": [{"time_ns": 1772359200000000001, "source": "falco", "id": "falco-…", …}]}

The schema tag lets a correlator refuse batches from a newer sidecar with a clear 400
instead of misreading them; unknown *event* fields are ignored, so adding an optional
field to ``Event`` does not need a new version. Decoding validates the few invariants the
engine relies on (a known source, an id, a positive event time).

Over Kafka a relay also writes a *progress marker* to every partition
(``progress/v1``, header ``schema``): the event time up to which it has delivered
everything it will deliver in order, so a partition's watermark moves as data and a
replay of the partition decides exactly what the first run decided::

    {"schema": "lateral-chain-detector/progress/v1", "relay": "node-a", "time_ns": 1772…}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

import msgspec

from correlation.event import SOURCES, Event

SCHEMA: Final = "lateral-chain-detector/events/v1"
PROGRESS_SCHEMA: Final = "lateral-chain-detector/progress/v1"


class WireError(ValueError):
    """A batch that cannot be used; ``reason`` is a snake_case code for metrics and 400s."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class EventBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What goes over the wire: the schema tag and the events, oldest first."""

    schema: str
    events: list[Event]


class Progress(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A relay's progress marker: it has delivered its events up to ``time_ns``."""

    schema: str
    relay: str
    time_ns: int


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(EventBatch)
_PROGRESS: Final = msgspec.json.Decoder(Progress)
_Wire = TypeVar("_Wire", EventBatch, Progress)


def encode(events: Sequence[Event]) -> bytes:
    """One batch as JSON bytes."""
    return _ENCODER.encode(EventBatch(schema=SCHEMA, events=list(events)))


def decode(body: bytes) -> list[Event]:
    """The events of a batch; :class:`WireError` names what is wrong (never the content)."""
    batch = _decode(_DECODER, body, "bad_event_batch", SCHEMA)
    for index, event in enumerate(batch.events):
        _check(index, event)
    return batch.events


def _decode(decoder: msgspec.json.Decoder[_Wire], body: bytes, invalid: str, schema: str) -> _Wire:
    """One wire document of the given schema; ``invalid`` is the reason for a bad shape."""
    try:
        doc = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise WireError(invalid, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise WireError("malformed_json", str(exc)) from None
    if doc.schema != schema:
        raise WireError("unknown_schema", f"schema {doc.schema!r}; expected {schema}")
    return doc


def _check(index: int, event: Event) -> None:
    if event.source not in SOURCES:
        raise WireError("bad_event", f"events[{index}].source {event.source!r} is unknown")
    if not event.id:
        raise WireError("bad_event", f"events[{index}].id is empty")
    if event.time_ns <= 0:
        raise WireError("bad_event", f"events[{index}].time_ns must be positive")


def encode_progress(relay: str, time_ns: int) -> bytes:
    """One progress marker as JSON bytes."""
    return _ENCODER.encode(Progress(schema=PROGRESS_SCHEMA, relay=relay, time_ns=time_ns))


def decode_progress(body: bytes) -> Progress:
    """A progress marker; :class:`WireError` when it is not one."""
    marker = _decode(_PROGRESS, body, "bad_progress", PROGRESS_SCHEMA)
    if not marker.relay:
        raise WireError("bad_progress", "relay is empty")
    return marker
