"""The shipped rules file has Falco's required keys and this project's contract; the checks
themselves catch the problems they are meant to catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from falco_rules.tooling import ruleset
from falco_rules.tooling.errors import RuleFileError
from falco_rules.tooling.structure import (
    NETWORK_OUTPUT_FIELDS,
    REQUIRED_OUTPUT_FIELDS,
    TECHNIQUE,
    output_fields,
)
from tests.unit.falco_rules.helpers import rules

# Fixed names: other components (chain rules, examples) match on these exact strings.
FIXED = {
    "LMD Network Scanner Launched in Pod": "T1046",
    "LMD Netcat or Socat Listen or Scan in Pod": "T1046",
    "LMD Tool Connected to Cluster Internal Address": "T1046",
    "LMD Shell Connected to Cluster Internal Address": "T1046",
    "LMD Tool Connected to Kubernetes API": "T1613",
    "LMD Cloud Metadata Service Contacted": "T1552.005",
    "LMD Service Account Token Read": "T1528",
    "LMD Raw Socket Opened in Pod": "T1040",
}


def test_shipped_file_loads_with_engine_version() -> None:
    rs = rules()
    assert rs.engine_version == "0.31.0"
    assert set(FIXED) <= set(rs.rules)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_rule_tags_and_source(name: str) -> None:
    rule = rules().rules[name]
    assert FIXED[name] in rule.tags
    assert any(t.startswith("mitre_") for t in rule.tags)
    assert rule.source == "syscall"


def test_every_rule_outputs_the_correlation_fields() -> None:
    for rule in rules().rules.values():
        fields = output_fields(rule.output)
        assert set(REQUIRED_OUTPUT_FIELDS) <= set(fields), rule.name
        if "lmd_ip_connect" in rule.condition:
            assert set(NETWORK_OUTPUT_FIELDS) <= set(fields), rule.name
        assert all(TECHNIQUE.fullmatch(t) or not t.startswith("T1") for t in rule.tags)


def test_output_fields_parses_key_field_pairs() -> None:
    text = "x (ns=%k8s.ns.name arg=%proc.aname[2] plain %proc.name)"
    assert output_fields(text) == ["k8s.ns.name", "proc.aname[2]"]


def _load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        ruleset.load(path)
    return info.value.errors


GOOD_RULE = """
- rule: LMD Example
  desc: d
  condition: lmd_spawned and proc.name in (lmd_tools)
  output: x (ns=%k8s.ns.name pod=%k8s.pod.name pod_uid=%k8s.pod.uid container=%container.id
    image=%container.image.repository process=%proc.name command=%proc.cmdline
    parent=%proc.pname user=%user.name)
  priority: NOTICE
  source: syscall
  tags: [T1046, mitre_discovery]
"""
HEADER = """- required_engine_version: 0.31.0
- macro: lmd_spawned
  condition: evt.type = execve
- list: lmd_tools
  items: [nmap]
"""


def test_good_minimal_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(HEADER + GOOD_RULE, encoding="utf-8")
    rs = ruleset.load(path)
    assert rs.expanded_text(rs.rules["LMD Example"].condition) == (
        "(evt.type = execve) and proc.name in (nmap)"
    )


def test_every_problem_reported_with_its_line(tmp_path: Path) -> None:
    text = (
        "- macro: spawned\n  condition: evt.type = execve\n"
        "- rule: Example\n  desc: d\n  condition: spawned\n  output: no fields\n"
        "  priority: LOUD\n  source: k8s_audit\n  tags: [network]\n  colour: red\n"
        "- list: lmd_x\n  items: [a]\n- list: lmd_x\n  items: [b]\n"
    )
    errors = _load(tmp_path, text)
    joined = "\n".join(errors)
    assert ":1: macro 'spawned' must use the lmd_ prefix" in joined
    assert ":3: unknown key 'colour' in a rule" in joined
    assert "must start with 'LMD '" in joined
    assert "unknown priority 'LOUD'" in joined
    assert "source must be syscall" in joined
    assert "MITRE ATT&CK technique id" in joined
    assert "output lacks key=%k8s.ns.name" in joined
    assert ":13: duplicate list 'lmd_x' (first at line 11)" in joined
    assert "required_engine_version must appear exactly once" in joined


def test_unknown_unused_and_forward_references(tmp_path: Path) -> None:
    text = HEADER.replace("proc.name in (lmd_tools)", "") + GOOD_RULE.replace(
        "lmd_spawned and proc.name in (lmd_tools)",
        "lmd_later and lmd_missing_macro and proc.name in (lmd_missing_list)",
    )
    text += "- macro: lmd_later\n  condition: evt.num > 0\n"
    errors = "\n".join(_load(tmp_path, text))
    assert "unknown macro lmd_missing_macro" in errors
    assert "unknown list lmd_missing_list" in errors
    assert "macro lmd_later is used before its definition" in errors
    assert "lmd_tools is defined but never used" in errors


def test_bad_condition_reported_with_caret(tmp_path: Path) -> None:
    text = HEADER + GOOD_RULE.replace("proc.name in (lmd_tools)", "proc.name in (lmd_tools")
    errors = _load(tmp_path, text)
    assert len(errors) >= 1
    assert "condition does not parse" in errors[0]
    assert "^" in errors[0]


def test_not_a_sequence(tmp_path: Path) -> None:
    assert _load(tmp_path, "rule: x\n") == [
        f"{tmp_path / 'rules.yaml'}:1: a rules file is a YAML sequence of items"
    ]
