"""Every rule condition (macros and lists expanded) and every output field, compiled by a real
Falco filter compiler: libsinsp inside Debian's sysdig 0.29.3.

Fails, never skips, when sysdig is missing: the fixture first runs scripts/ensure-sysdig.sh
(as scripts/test.sh does), then insists on the binary.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from falco_rules.tooling import ruleset
from falco_rules.tooling.compile_check import NEWER_FIELDS, Compiler, rule_filters
from tests.unit.falco_rules.helpers import rules

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
RULE_NAMES = sorted(rules().rules)


@pytest.fixture(scope="module")
def compiler() -> Iterator[Compiler]:
    if shutil.which("sysdig") is None:
        subprocess.run([str(ROOT / "scripts" / "ensure-sysdig.sh")], check=False, timeout=900)
    compiler = Compiler()  # raises CompilerUnavailable (a test failure) when still missing
    yield compiler
    compiler.close()


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
