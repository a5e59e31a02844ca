"""Every file of the published corpus copied into tests/data parses, or is refused with a
reason docs/input-formats.md explains: one table, file by file, line by line.

Outcomes are counted per line: ``event`` for a line that became events, else the refusal's
reason (``falco_internal`` is a :class:`SkippedInput`: valid, but not an event). The corpus
files that may not be copied (Elastic License 2.0, no licence, issue text) are listed in
docs/input-formats.md with that reason and are not tested here: tests never read outside the
repository.
"""

from __future__ import annotations

import re
from collections import Counter
from fnmatch import fnmatch
from functools import cache
from pathlib import Path

import pytest

from detector.parse import ParseError, parse_line

DATA = Path(__file__).resolve().parents[2] / "data"
DOC = Path(__file__).resolve().parents[3] / "docs" / "input-formats.md"
CORPUS = ("falco", "k8s-audit", "negative")
NOT_DATA = ("*.md", "*.tsv")
# (file or glob under tests/data, outcome -> lines); the first matching entry applies
TABLE: tuple[tuple[str, dict[str, int]], ...] = (
    ("falco/falco-test-output-single_rule_with_cat_write.json", {"event": 8}),
    ("falco/falco-website/blog-docs-alerts.jsonl", {"event": 17, "falco_internal": 6}),
    ("falco/falcosidekick/go-test-payloads.jsonl", {"event": 2, "falco_internal": 3}),
    ("k8s-audit/audit2rbac/demo.log.jsonl", {"event": 37}),
    ("k8s-audit/audit2rbac/demo.v1beta1.log.jsonl", {"event": 37}),
    ("k8s-audit/hori-k3s/k3s-1.33-audit-bound-token.jsonl", {"event": 6}),
    ("k8s-audit/falco-trace-files/create_configmap_sensitive_values.json", {"event": 6}),
    ("k8s-audit/falco-trace-files-extra/fal_01_003.json", {"bad_type": 1}),  # {"kind": 0}
    ("k8s-audit/falco-trace-files/*.json", {"event": 1}),
    ("k8s-audit/falco-trace-files-extra/*.json", {"event": 1}),
    # vendor-normalized Panther test logs: a negative control, all refused
    ("negative/*/aks-monitor-tests.jsonl", {"unknown_format": 32, "missing_field": 3}),
    ("negative/*/eks-audit-tests.jsonl", {"bad_time": 15, "missing_field": 10}),
    ("negative/*/gke-auditlog-tests.jsonl", {"unsupported_envelope": 10}),
)


def corpus_files() -> list[str]:
    found = [p for top in CORPUS for p in (DATA / top).rglob("*") if p.is_file()]
    names = [p.relative_to(DATA).as_posix() for p in found]
    return sorted(n for n in names if not any(fnmatch(n, pattern) for pattern in NOT_DATA))


def expected(name: str) -> dict[str, int]:
    return next(outcome for pattern, outcome in TABLE if fnmatch(name, pattern))


def outcomes(path: Path) -> tuple[Counter[str], list[ParseError]]:
    counts: Counter[str] = Counter()
    refusals: list[ParseError] = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            events = parse_line(line)
        except ParseError as exc:
            counts[exc.reason] += 1
            refusals.append(exc)
            continue
        assert events, f"{path}: a non-blank line gave no events"
        assert all(e.time_ns > 0 and e.id for e in events)
        counts["event"] += 1
    return counts, refusals


@cache
def documented_reasons() -> dict[str, str]:
    """``reason -> explanation`` from the reasons table of docs/input-formats.md."""
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", DOC.read_text(encoding="utf-8"), re.M)
    return dict(rows)


def test_the_corpus_is_all_here() -> None:
    names = corpus_files()
    assert len(names) == 2 + 1 + 2 + 1 + 21 + 26 + 3  # falco, audit2rbac, k3s, traces, panther
    for name in names:
        assert any(fnmatch(name, pattern) for pattern, _ in TABLE), f"{name} has no table entry"


@pytest.mark.parametrize("name", corpus_files())
def test_file_parses_or_is_refused_with_a_documented_reason(name: str) -> None:
    counts, refusals = outcomes(DATA / name)
    assert dict(counts) == expected(name)
    for refusal in refusals:
        assert refusal.reason in documented_reasons(), f"{refusal.reason} is not documented"
        assert str(refusal).startswith(refusal.reason)  # the reason and a message say why


def test_junk_kind_is_refused_with_the_field_named() -> None:
    (refusal,) = outcomes(DATA / "k8s-audit/falco-trace-files-extra/fal_01_003.json")[1]
    assert refusal.reason == "bad_type"
    assert "$.kind" in str(refusal)


def test_vendor_normalized_panther_logs_are_refused_as_such() -> None:
    # Their times are "YYYY-MM-DD HH:MM:SS.ff", many lack the audit timestamps, GKE records
    # are Cloud Audit Logs, and Azure activity records are not audit Events at all.
    folder = DATA / "negative" / "panther-analysis"
    messages = {str(e) for f in folder.glob("*.jsonl") for e in outcomes(f)[1]}
    assert any("not an RFC 3339 time ('2022-11-29 00:09:04.38')" in m for m in messages)
    assert any("no requestReceivedTimestamp/stageTimestamp" in m for m in messages)
    assert any("GKE Cloud Audit Log record (protoPayload)" in m for m in messages)
    assert any("neither a Falco alert nor an audit Event/EventList" in m for m in messages)


def test_every_documented_reason_has_an_explanation() -> None:
    reasons = documented_reasons()
    assert {"bad_type", "bad_time", "missing_field", "unknown_format"} <= set(reasons)
    assert all(len(text) > 20 for text in reasons.values())
