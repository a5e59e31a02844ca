"""Record formats a sink can publish, resolved through one registry.

``chain-v1`` is the canonical record (docs/schema/chain-v1.schema.json) and passes through
unchanged; ``ocsf`` maps it onto an OCSF Detection Finding (:func:`detector.ocsf.to_ocsf`).
Sinks still read routing data (id, incident, rule, severity) from the chain record; only
the published body is formatted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from correlation.chain import SCHEMA_V1
from detector.ocsf import to_ocsf

Formatter = Callable[[dict[str, Any]], dict[str, Any]]


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return record


FORMATS: Final[dict[str, Formatter]] = {"chain-v1": _identity, "ocsf": to_ocsf}
# What a consumer is told it receives (Kafka header, webhook header).
SCHEMAS: Final[dict[str, str]] = {"chain-v1": SCHEMA_V1, "ocsf": "ocsf/1.3.0/detection_finding"}


def formatter(name: str) -> Formatter:
    """The formatter registered as ``name`` (config validation already checked it)."""
    return FORMATS[name]


def schema_of(name: str) -> str:
    """The schema label published with records of format ``name``."""
    return SCHEMAS[name]
