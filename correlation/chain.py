"""Confirmed chains and the chain record v1, the contract every output uses.

A :class:`Chain` is what the engine emits: the rule that completed, the evidence
events in step order, and the incident it was stitched into. :func:`to_record`
turns it into the published ``lateral-movement-chain/v1`` record (a plain dict
ready for JSON); ``docs/schema/chain-v1.schema.json`` is its JSON Schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from correlation.event import Event, describe

SCHEMA_V1: Final = "lateral-movement-chain/v1"
SEVERITIES: Final = ("info", "low", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    """Order of a severity name (``info`` = 0 … ``critical`` = 4); unknown names rank -1."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1


class ChainStep(msgspec.Struct, frozen=True, gc=False):
    """One piece of evidence: which rule step it satisfied, and the event."""

    step: str
    event: Event


class Chain(msgspec.Struct, frozen=True):
    """A confirmed chain. ``id`` is a deterministic function of its evidence."""

    id: str
    incident: str
    rule: str
    title: str
    severity: str
    techniques: tuple[str, ...]
    steps: tuple[ChainStep, ...]
    entities: dict[str, tuple[str, ...]]
    path: tuple[str, ...] = ()  # stitched incident path, e.g. ("ns/p", "ns2/q")


def rfc3339(time_ns: int) -> str:
    """UTC RFC 3339 with microseconds and ``Z``: ``2026-11-27T01:02:03.456789Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_record(chain: Chain) -> dict[str, Any]:
    """The chain record v1 as a JSON-ready dict (see docs/chain-record.md)."""
    times = [s.event.time_ns for s in chain.steps]
    return {
        "schema": SCHEMA_V1,
        "id": chain.id,
        "incident": chain.incident,
        "rule": chain.rule,
        "title": chain.title,
        "severity": chain.severity,
        "techniques": list(chain.techniques),
        "first_seen": rfc3339(min(times)),
        "last_seen": rfc3339(max(times)),
        "entities": {k: list(v) for k, v in chain.entities.items()},
        "path": list(chain.path),
        "steps": [_step_record(s) for s in chain.steps],
    }


def _step_record(step: ChainStep) -> dict[str, Any]:
    event = step.event
    return {
        "step": step.step,
        "source": event.source,
        "time": rfc3339(event.time_ns),
        "event_id": event.id,
        "summary": describe(event),
    }
