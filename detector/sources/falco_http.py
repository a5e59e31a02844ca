"""``POST /falco``: Falco's ``http_output`` and Falcosidekick's webhook output.

Falco posts one JSON alert per request (``json_output: true``; with ``compress_uploads``
the transfer may be chunked) and never retries, so this receiver answers at once.
Falcosidekick's webhook forwards the same alert shape plus a ``uuid``; the parser
uses that ``uuid`` as the event id when present. Falco's own ``internal`` alerts
(drop notices, metrics snapshots) are well formed but carry no evidence: they are
acknowledged with 200 and counted as skipped, never as errors.
"""

from __future__ import annotations

from typing import Final

from correlation.event import Event
from detector.errors import ParseError, SkippedInput
from detector.metrics import Metrics
from detector.parse import parse_falco
from detector.sources.http_server import RequestRejected, decode_json

PATH: Final = "/falco"


class FalcoHttpReceiver:
    """Decodes one Falco alert per request body."""

    name = "falco_http"
    path = PATH

    def __init__(self, max_body_bytes: int, metrics: Metrics) -> None:
        self.max_body_bytes = max_body_bytes
        self._metrics = metrics

    def decode(self, body: bytes) -> list[Event]:
        doc = decode_json(body)
        if not isinstance(doc, dict):
            raise RequestRejected(400, "not_an_object", "expected one Falco alert object")
        try:
            return [parse_falco(doc)]
        except SkippedInput as exc:
            self._metrics.drops.labels(reason=f"skipped_{exc.reason}").inc()
            return []
        except ParseError as exc:
            raise RequestRejected(400, exc.reason, str(exc.args[0])) from None
