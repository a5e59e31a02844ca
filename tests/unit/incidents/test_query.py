"""Filters from the URL query or the CLI flags: one parser, clear errors."""

from __future__ import annotations

import pytest

from detector.incidents.query import DEFAULT_LIMIT, Query, QueryError, parse_query, parse_rfc3339_ns

NOW = 1_800_000_000.0


def test_relative_and_absolute_times() -> None:
    assert parse_query({"since": "1h"}, NOW).since_ns == int((NOW - 3600) * 1e9)
    assert parse_query({"since": "30m"}, NOW).since_ns == int((NOW - 1800) * 1e9)
    query = parse_query({"until": "2026-11-27T09:04:20.998981Z"}, NOW)
    assert query.until_ns == 1_795_770_260_998_981_000


def test_entities_severity_rule_limit() -> None:
    query = parse_query(
        {
            "severity": "high",
            "rule": "exec-pivot",
            "pod": "a/b",
            "service_account": "a:s",
            "limit": "5",
        },
        NOW,
    )
    assert query == Query(
        min_severity="high",
        rule="exec-pivot",
        entities=(("pods", "a/b"), ("service_accounts", "a:s")),
        limit=5,
    )
    assert parse_query({}, NOW) == Query(limit=DEFAULT_LIMIT)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"severity": "urgent"}, "severity must be one of"),
        ({"since": "yesterday"}, "since: use a duration"),
        ({"limit": "0"}, "limit must be"),
        ({"colour": "red"}, "unknown filter colour"),
        ({"until": "2026-11-27T09:04:20"}, "until: use a duration"),
    ],
)
def test_bad_filters_are_named(args: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(args, NOW)


def test_rfc3339_is_exact_to_the_microsecond() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:00.000001Z") == 1000
    assert parse_rfc3339_ns("2026-11-27T09:04:20.999999+00:00") % 10**9 == 999_999_000
