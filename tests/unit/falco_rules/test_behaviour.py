"""Each rule against events that must fire it and events that must not (behaviour.yaml)."""

from __future__ import annotations

import pytest

from tests.unit.falco_rules.helpers import Case, cases, firing, rules, with_appended

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_fires_only_where_expected(case: Case) -> None:
    rs = with_appended(rules(), case.append)
    expected = ({case.rule} if case.fire else set()) | case.also
    assert firing(rs, case.event) == expected


def test_every_rule_has_firing_and_quiet_cases() -> None:
    for name in rules().rules:
        outcomes = {c.fire for c in CASES if c.rule == name}
        assert outcomes == {True, False}, f"{name} needs fire and quiet cases"


def test_table_names_only_real_rules() -> None:
    named = {c.rule for c in CASES} | {r for c in CASES for r in c.also}
    assert named <= set(rules().rules)


def test_appending_to_an_allowlist_silences_a_firing_case() -> None:
    # The override path users take: the same nmap event fires until its namespace is appended.
    nmap = next(c for c in CASES if c.name == "nmap ping sweep")
    assert firing(rules(), nmap.event) == {nmap.rule}
    quieter = with_appended(rules(), {"lmd_scanner_allowed_namespaces": ["shop"]})
    assert firing(quieter, nmap.event) == set()
