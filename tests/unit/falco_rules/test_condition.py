"""The condition parser and evaluator on their own, operator by operator."""

from __future__ import annotations

import pytest

from falco_rules.tooling import condition as cond
from falco_rules.tooling.errors import ConditionSyntaxError, EvaluationError
from falco_rules.tooling.evaluate import EventFields, matches

EVENT: EventFields = {
    "evt.type": "connect",
    "evt.dir": "<",
    "evt.rawres": -115,
    "proc.name": "curl",
    "proc.cmdline": "curl -sk https://Kubernetes.default.svc/api",
    "fd.sip": "10.96.0.1",
    "fd.snet": "10.96.0.1",
    "fd.ip": ["10.244.1.7", "10.96.0.1"],
    "fd.net": ["10.244.1.7", "10.96.0.1"],
    "fd.sport": 443,
    "fd.name": "/var/run/secrets/kubernetes.io/serviceaccount/..data/token",
    "evt.is_open_read": True,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("evt.type = connect", True),
        ("evt.type == connect and evt.dir = <", True),
        ("evt.type != connect", False),
        ("evt.type in (open, connect)", True),
        ("not evt.type in (open, openat)", True),
        ("evt.type = open or proc.name = curl", True),
        ("(evt.type = open or proc.name = wget) and fd.sport = 443", False),
        ("fd.sport in (80, 443) and fd.sport >= 443 and fd.sport < 444", True),
        ("evt.rawres >= 0", False),
        ("proc.cmdline contains kubernetes.default", False),
        ("proc.cmdline icontains kubernetes.default", True),
        ("proc.cmdline startswith 'curl -sk'", True),
        ('proc.cmdline endswith "/api"', True),
        ("fd.name pmatch (/var/run/secrets, /etc)", True),
        ("fd.name pmatch (/var/run/sec)", False),
        ("fd.name glob '/var/run/*/token'", True),
        ("fd.name glob '/run/*'", False),
        ("fd.snet in (10.0.0.0/8, 172.16.0.0/12)", True),
        ("fd.snet = 192.168.0.0/16", False),
        ("fd.net != 127.0.0.0/8", True),
        ("fd.ip = 10.244.1.7", True),
        ("fd.ip != 10.244.1.7", False),
        ("evt.is_open_read = true", True),
        ("k8s.ns.name exists", False),
        ("proc.name exists", True),
        # a missing field fails every comparison, != included; only `not` flips it
        ("k8s.ns.name != shop", False),
        ("not k8s.ns.name in (shop)", True),
        ("proc.name in ()", False),
    ],
)
def test_evaluates(text: str, expected: bool) -> None:
    assert matches(cond.parse(text), EVENT) is expected


def test_precedence_and_binds_tighter_than_or() -> None:
    tree = cond.parse("a.x = 1 or a.y = 2 and a.z = 3")
    assert isinstance(tree, cond.Or)
    assert isinstance(tree.items[1], cond.And)


def test_macro_reference_and_value_spans() -> None:
    text = "lmd_m and fd.sip in (lmd_ips, 1.2.3.4)"
    tree = cond.parse(text)
    assert isinstance(tree, cond.And)
    macro, check = tree.items
    assert isinstance(macro, cond.MacroRef) and text[macro.start : macro.end] == "lmd_m"
    assert isinstance(check, cond.Check) and check.values is not None
    assert [v.text for v in check.values] == ["lmd_ips", "1.2.3.4"]
    assert text[check.values[0].start : check.values[0].end] == "lmd_ips"


def test_quoted_values_keep_spaces_and_escapes() -> None:
    tree = cond.parse(r'proc.cmdline contains " -c \"x\""')
    assert isinstance(tree, cond.Check) and tree.value is not None
    assert tree.value.text == ' -c "x"'


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("(proc.name = a", 14),
        ("proc.name = a and", 17),
        ("proc.name in a", 13),
        ('proc.name = "open', 12),
        ("proc.name = a b", 14),
        ("and", 0),
    ],
)
def test_syntax_errors_point_at_the_problem(text: str, position: int) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        cond.parse(text)
    assert info.value.position == position
    assert "^" in str(info.value)


def test_unexpanded_macro_and_unsupported_operator_are_errors() -> None:
    with pytest.raises(EvaluationError, match="unexpanded macro"):
        matches(cond.parse("lmd_m"), EVENT)
    with pytest.raises(EvaluationError, match="not supported"):
        matches(cond.parse("proc.name bcontains 6375"), EVENT)
    with pytest.raises(EvaluationError, match="as numbers"):
        matches(cond.parse("proc.name > 3"), EVENT)
