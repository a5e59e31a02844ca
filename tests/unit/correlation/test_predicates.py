"""Every predicate operator, compiled from YAML exactly as a rule file would write it."""

from __future__ import annotations

from pathlib import Path

import pytest

from correlation.event import Event, Identity
from correlation.rules import load_rules
from correlation.rules.model import NO_CONTEXT
from correlation.testing import audit_event, falco_event

SCANNER = falco_event(
    "LMD Network Scanner Launched in Pod",
    tags=("network", "T1046"),
    target_ips=("10.1.2.3", "fd00::1"),
    port=443,
    fields={"proc.name": "nmap", "proc.cmdline": "nmap -sS 10.1.0.0/16"},
)
LIST_SECRETS = audit_event("list", "secrets", namespace="payments", code=403, decision="forbid")


def compile_where(tmp_path: Path, where: str) -> object:
    text = f"""
rules:
  - id: t
    severity: low
    within: 60s
    steps:
      - name: only
        by: actor.pod
        where: {where}
"""
    path = tmp_path / "rule.yaml"
    path.write_text(text)
    return load_rules([path])[0].step("only").where.pred


@pytest.mark.parametrize(
    ("where", "event", "expected"),
    [
        ("{rule: LMD Network Scanner Launched in Pod}", SCANNER, True),
        ("{rule: Other}", SCANNER, False),
        ("{rule: [Other, LMD Network Scanner Launched in Pod]}", SCANNER, True),
        ("{tags: T1046}", SCANNER, True),
        ("{tags: [T1613, T1040]}", SCANNER, False),
        ("{fields.proc.name: {startswith: nm}}", SCANNER, True),
        ("{fields.proc.name: {endswith: [xx, ap]}}", SCANNER, True),
        ("{fields.proc.cmdline: {contains: '-sS'}}", SCANNER, True),
        ("{fields.proc.cmdline: {contains: [masscan]}}", SCANNER, False),
        ("{target.ips: {startswith: 'fd00:'}}", SCANNER, True),
        ("{target.ips: 10.1.2.3}", SCANNER, True),
        ("{target.port: {gte: 443, lte: 443}}", SCANNER, True),
        ("{target.port: {gt: 443}}", SCANNER, False),
        ("{response_code: {gte: 400, lt: 500}}", LIST_SECRETS, True),
        ("{response_code: {lt: 400}}", LIST_SECRETS, False),
        ("{response_code: 403}", LIST_SECRETS, True),
        ("{decision: forbid, verb: list}", LIST_SECRETS, True),
        ("{verb: {not_in: [get, list]}}", LIST_SECRETS, False),
        ("{target.namespace: {exists: true}}", LIST_SECRETS, True),
        ("{subresource: {exists: true}}", LIST_SECRETS, False),
        ("{actor.service_account: 'shop:web'}", LIST_SECRETS, True),
        ("{any: [{verb: get}, {resource: secrets}]}", LIST_SECRETS, True),
        ("{all: [{verb: get}, {resource: secrets}]}", LIST_SECRETS, False),
        ("{not: {verb: get}}", LIST_SECRETS, True),
        ("{cross_namespace: true}", LIST_SECRETS, True),
        ("{cross_namespace: false}", LIST_SECRETS, False),
        ("{signal: token-read}", falco_event("x", tags=("T1528",)), True),
        ("{signal: token-read}", LIST_SECRETS, False),
        ("{source_ip_foreign: true}", LIST_SECRETS, False),  # no context: never foreign
    ],
)
def test_operator(tmp_path: Path, where: str, event: Event, expected: bool) -> None:
    pred = compile_where(tmp_path, where)
    assert pred(event, NO_CONTEXT) is expected  # type: ignore[operator]


def test_cross_namespace_same_namespace_is_false(tmp_path: Path) -> None:
    pred = compile_where(tmp_path, "{cross_namespace: true}")
    same = audit_event("list", "secrets", namespace="shop")
    assert pred(same, NO_CONTEXT) is False  # type: ignore[operator]


def test_numeric_ops_on_non_numeric_strings_are_false(tmp_path: Path) -> None:
    pred = compile_where(tmp_path, "{fields.fd.sport: {gte: 1}}")
    good = falco_event("x", fields={"fd.sport": "8080"})
    bad = falco_event("x", fields={"fd.sport": "http"})
    assert pred(good, NO_CONTEXT) is True  # type: ignore[operator]
    assert pred(bad, NO_CONTEXT) is False  # type: ignore[operator]


def test_missing_identity_fields_do_not_match(tmp_path: Path) -> None:
    pred = compile_where(tmp_path, "{actor.pod: {startswith: web}}")
    bare = Event(time_ns=0, source="falco", id="x", actor=Identity())
    assert pred(bare, NO_CONTEXT) is False  # type: ignore[operator]
