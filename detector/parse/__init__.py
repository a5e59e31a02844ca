"""Parsers: Falco alerts and Kubernetes audit events to normalized events.

The API every source uses::

    parse_falco(doc)      one Falco alert (json_output, http_output, Falcosidekick, gRPC dict)
    parse_audit(doc)      one audit.k8s.io/v1 (or v1beta1) Event
    parse_document(data)  one JSON document, auto-detected: alert, Event or EventList
    parse_line(line)      one line of a JSON-lines file, auto-detected

Each raises :class:`ParseError` (``.reason`` is a metrics label) and nothing else;
:class:`SkippedInput`, a ParseError, marks records that are valid but not events
(Falco internal alerts). Modules: ``falco``, ``audit``, ``document`` (auto-detection and
envelopes), ``timestamps`` (fast RFC 3339), ``limits`` (size caps).
"""

from __future__ import annotations

from detector.errors import ParseError, SkippedInput
from detector.parse.audit import parse_audit
from detector.parse.document import parse_document, parse_line
from detector.parse.falco import parse_falco

__all__ = [
    "ParseError",
    "SkippedInput",
    "parse_audit",
    "parse_document",
    "parse_falco",
    "parse_line",
]
