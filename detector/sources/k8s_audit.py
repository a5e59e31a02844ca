"""``POST /k8s-audit``: the API server's audit webhook backend.

The API server posts an ``audit.k8s.io/v1`` ``EventList`` (batch mode: up to 400
events, up to 30 s late by default) and retries the whole batch on a non-2xx answer.
So only a problem with the *document* gets a 400 (malformed JSON, not an EventList,
an apiVersion we do not speak); a bad *item* is counted and skipped while the rest
of the batch is accepted — a 400 would make the API server resend, and lose, the lot.
Enqueue-or-refuse happens in the shared server: the API server never waits on
correlation.
"""

from __future__ import annotations

from typing import Any, Final

from correlation.event import Event
from detector.errors import ParseError, SkippedInput
from detector.logging import get_logger
from detector.metrics import Metrics
from detector.parse import parse_audit
from detector.sources.http_server import RequestRejected, decode_json

PATH: Final = "/k8s-audit"
API_VERSIONS: Final = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
log = get_logger("detector.k8s_audit")


class K8sAuditReceiver:
    """Decodes an audit ``EventList`` into events, item by item."""

    name = "k8s_audit"
    path = PATH

    def __init__(self, max_body_bytes: int, metrics: Metrics) -> None:
        self.max_body_bytes = max_body_bytes
        self._metrics = metrics

    def decode(self, body: bytes) -> list[Event]:
        items = _items(decode_json(body))
        events: list[Event] = []
        for index, item in enumerate(items):
            event = self._item(index, item)
            if event is not None:
                events.append(event)
        return events

    def _item(self, index: int, item: Any) -> Event | None:
        try:
            if not isinstance(item, dict):
                raise ParseError("not_an_object", "EventList item is not an object")
            return parse_audit(item)
        except SkippedInput as exc:
            self._metrics.drops.labels(reason=f"skipped_{exc.reason}").inc()
        except ParseError as exc:
            self._metrics.parse_errors.labels(source=self.name, reason=exc.reason).inc()
            log.warning("audit_item_rejected", index=index, reason=exc.reason, detail=str(exc))
        return None


def _items(doc: Any) -> list[Any]:
    """The ``items`` of an EventList, or a 400 naming what is wrong with the document."""
    if not isinstance(doc, dict):
        raise RequestRejected(400, "not_an_object", "expected an audit.k8s.io/v1 EventList")
    version = doc.get("apiVersion")
    if version not in API_VERSIONS:
        raise RequestRejected(
            400, "unknown_api_version", f"apiVersion {version!r}; expected audit.k8s.io/v1"
        )
    if doc.get("kind") != "EventList":
        raise RequestRejected(400, "not_an_event_list", f"kind {doc.get('kind')!r}")
    items = doc.get("items") or []
    if not isinstance(items, list):
        raise RequestRejected(400, "bad_items", "items must be a list")
    return items
