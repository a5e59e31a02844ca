"""What an analyst asks the incident store: a time range, a severity floor, an entity, a rule.

One :class:`Query` serves the pages (``/api/incidents?since=1h&severity=high``), the CLI
(``detector incidents --since 1h --severity high``) and tests, so the three cannot
disagree about what a filter means. Times are event times: ``since`` keeps incidents
whose latest evidence is at or after it, ``until`` those whose earliest is at or before
it. Relative times (``1h``) count back from ``now``, which callers pass in.

Exceptions::

    detector.errors.UsageError
     └── QueryError       a filter value that cannot be understood; the message names it
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from correlation.chain import SEVERITIES, severity_rank
from detector.errors import UsageError

_RELATIVE: Final = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LIMIT: Final = 200
MAX_LIMIT: Final = 5000
# query key -> the chain record entity kind it matches
ENTITY_FILTERS: Final = {
    "namespace": "namespaces",
    "pod": "pods",
    "service_account": "service_accounts",
    "node": "nodes",
}


_HAS_ENTITY: Final = (
    "EXISTS (SELECT 1 FROM entities e WHERE e.chain = c.id AND e.kind = ? AND e.value = ?)"
)


class QueryError(UsageError):
    """A filter value that cannot be understood."""


@dataclass(frozen=True)
class Query:
    """Filters over chains; an incident matches when any of its chains does."""

    since_ns: int | None = None
    until_ns: int | None = None
    min_severity: str = ""
    rule: str = ""
    entities: tuple[tuple[str, str], ...] = ()  # (entity kind, value), all must match
    limit: int = DEFAULT_LIMIT

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over ``chains c`` and its parameters (values are bound)."""
        clauses, params = ["1"], list[Any]()
        if self.since_ns is not None:
            clauses.append("c.last_ns >= ?")
            params.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append("c.first_ns <= ?")
            params.append(self.until_ns)
        if self.min_severity:
            clauses.append("c.severity >= ?")
            params.append(severity_rank(self.min_severity))
        if self.rule:
            clauses.append("c.rule = ?")
            params.append(self.rule)
        for kind, value in self.entities:
            clauses.append(_HAS_ENTITY)
            params.extend((kind, value))
        return " AND ".join(clauses), params


def parse_query(args: Mapping[str, str], now_s: float) -> Query:
    """A :class:`Query` from string filters (URL query or CLI flags); unknown keys are an error."""
    known = {"since", "until", "severity", "rule", "limit", *ENTITY_FILTERS}
    unknown = sorted(set(args) - known)
    if unknown:
        raise QueryError(f"unknown filter {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    severity = args.get("severity", "")
    if severity and severity not in SEVERITIES:
        raise QueryError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return Query(
        since_ns=_time(args.get("since", ""), now_s, "since"),
        until_ns=_time(args.get("until", ""), now_s, "until"),
        min_severity=severity,
        rule=args.get("rule", ""),
        entities=tuple((kind, args[key]) for key, kind in ENTITY_FILTERS.items() if args.get(key)),
        limit=_limit(args.get("limit", "")),
    )


def _time(text: str, now_s: float, name: str) -> int | None:
    if not text:
        return None
    match = _RELATIVE.match(text)
    if match:
        return int((now_s - int(match.group(1)) * _UNIT_S[match.group(2)]) * 1e9)
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        raise QueryError(
            f"{name}: use a duration (30m, 1h, 7d) or an RFC 3339 time, got {text!r}"
        ) from None


def _limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise QueryError(f"limit must be 1..{MAX_LIMIT}, got {text!r}")
    return int(text)


def parse_rfc3339_ns(text: str) -> int:
    """``2026-11-27T09:04:20.998981Z`` → ns since the epoch; ValueError without an offset."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"no UTC offset in {text!r}")
    delta = moment - _EPOCH  # exact integer arithmetic, unlike float timestamp()
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
