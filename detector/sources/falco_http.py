"""``POST /falco``: Falco's ``http_output`` and Falcosidekick's webhook output.

Falco posts one JSON alert per request (``json_output: true``; with ``compress_uploads``
the transfer may be chunked) and never retries, so this receiver answers at once.
Falcosidekick's webhook forwards the same alert shape plus a ``uuid``; the parser
uses that ``uuid`` as the event id when present. The body is decoded straight into the
:class:`~detector.parse.falco.FalcoAlert` replay uses (one msgspec pass, no dict).
Falco's own ``internal`` alerts (drop notices, metrics snapshots) are well formed but
carry no evidence: they are acknowledged with 200 and counted as skipped, never as errors.
"""

from __future__ import annotations

from typing import Final

from detector.errors import ParseError, SkippedInput
from detector.parse.bodies import falco_body
from detector.parse.early import EarlyReject
from detector.sources.http_server import Decoded, bad_document

PATH: Final = "/falco"


class FalcoHttpReceiver:
    """Decodes one Falco alert per request body."""

    name = "falco_http"
    path = PATH

    def __init__(self, max_body_bytes: int, early: EarlyReject | None = None) -> None:
        """``early``: the rules' early reject (an alert none can use becomes a tick)."""
        self.max_body_bytes, self._early = max_body_bytes, early

    async def decode(self, body: bytes, max_events: int, room: int) -> Decoded:
        try:
            return Decoded([falco_body(body, self._early)])
        except SkippedInput as exc:
            return Decoded([], skipped={exc.reason: 1})
        except ParseError as exc:
            raise bad_document(exc) from None
