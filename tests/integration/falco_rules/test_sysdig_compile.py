"""Every rule condition (macros and lists expanded) and every output field, compiled by a real
Falco filter compiler and evaluated on the real recording: libsinsp inside Debian's sysdig
0.29.3 reading tests/data/captures/attack-actions.scap (fixture in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from falco_rules.tooling import ruleset
from falco_rules.tooling.compile_check import NEWER_FIELDS, Compiler, failures, rule_filters
from tests.unit.falco_rules.helpers import rules

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
RULE_NAMES = sorted(rules().rules)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_rule_condition_compiles(compiler: Compiler, name: str) -> None:
    rs = rules()
    verdict = compiler.compile(rule_filters(rs, rs.rules[name])["condition"])
    assert verdict.ok, verdict.message
    assert verdict.substituted == (), "conditions must only use fields libsinsp 0.29.3 knows"


@pytest.mark.parametrize("name", RULE_NAMES)
def test_rule_output_fields_compile(compiler: Compiler, name: str) -> None:
    rs = rules()
    verdict = compiler.compile(rule_filters(rs, rs.rules[name])["output"])
    assert verdict.ok, verdict.message
    assert set(verdict.substituted) <= set(NEWER_FIELDS)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_every_check_of_every_rule_evaluates_on_its_own(compiler: Compiler, name: str) -> None:
    rs = rules()
    assert failures(compiler, rs, rs.rules[name]) == {}


def test_every_macro_compiles_on_its_own(compiler: Compiler) -> None:
    rs = rules()
    failed = {}
    for name, text in rs.macros.items():
        verdict = compiler.compile(rs.expanded_text(text))
        if not verdict.ok:
            failed[name] = verdict.message
    assert failed == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("evt.type = connect and fd.bogus = 1", "unrecognized field fd.bogus"),
        ("(proc.name = a", "unexpected end of filter"),
        ("fd.sip = not-an-ip", "filter error"),
        # accepted by the compiler, refused by libsinsp on the first socket event
        ("fd.sip.name startswith kubernetes", "fd.*ip.name filter only supports"),
    ],
)
def test_compiler_rejects_bad_filters(compiler: Compiler, text: str, message: str) -> None:
    verdict = compiler.compile(text)
    assert not verdict.ok
    assert message in verdict.message


@pytest.mark.parametrize("field", sorted(NEWER_FIELDS))
def test_newer_fields_list_is_honest(compiler: Compiler, field: str) -> None:
    # Each listed field really is unknown to this libsinsp, and its stand-in really is known:
    # the substitution hides nothing but the version gap it is declared for.
    assert not compiler.compile(f"{field} exists", substitute=False).ok
    assert compiler.compile(f"{NEWER_FIELDS[field].stand_in} exists", substitute=False).ok


def test_a_broken_rule_file_fails_the_compile(compiler: Compiler, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = (ROOT / "falco_rules" / "lmd_rules.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("(container.id != host)", "(container.idd != host)"), "utf-8")
    rs = ruleset.load(path)
    rule = rs.rules["LMD Raw Socket Opened in Pod"]
    verdict = compiler.compile(rule_filters(rs, rule)["condition"])
    assert not verdict.ok
    assert "container.idd" in verdict.message


def test_a_run_time_only_operator_error_fails_the_check(compiler: Compiler, tmp_path: Path) -> None:
    # The bug the recording found: a prefix match on fd.sip.name compiles, and libsinsp refuses
    # it only when it evaluates the field on a socket event. The shipped condition short-circuits
    # before that on a capture without containers, so only the isolated checks see it.
    path = tmp_path / "startswith.yaml"
    text = (ROOT / "falco_rules" / "lmd_rules.yaml").read_text(encoding="utf-8")
    fixed = "fd.sip.name in (lmd_k8s_api_server_names)"
    assert fixed in text
    broken = f"(fd.sip.name startswith kubernetes.default or {fixed})"  # the list stays used
    path.write_text(text.replace(fixed, broken), "utf-8")
    rs = ruleset.load(path)
    users = (
        "LMD Tool Connected to Cluster Internal Address",
        "LMD Tool Connected to Kubernetes API",
    )
    for name in users:
        rule = rs.rules[name]
        assert compiler.compile(rule_filters(rs, rule)["condition"]).ok  # hidden by short-circuit
        found = failures(compiler, rs, rule)
        assert list(found) == ["check fd.sip.name startswith kubernetes.default"]
        (message,) = found.values()
        assert "fd.*ip.name filter only supports '=' and '!=' operators" in message
