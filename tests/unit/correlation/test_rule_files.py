"""Rule files: every error reported with path:line, all at once; nothing half-loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from correlation.rules import RuleError, builtin_rules_paths, load_rules, parse_duration

GOOD = """
rules:
  - id: good-rule
    title: Good
    severity: medium
    techniques: [T1046]
    within: 90s
    steps:
      - name: a
        where: {signal: recon}
        by: actor.pod
"""

BAD = """\
signals:
  mine: {verb: {between: 1}}
rules:
  - id: Bad Id
    severity: urgent
    within: soon
    techniques: [X1]
    colour: red
    steps:
      - name: a
        where: {signal: nope}
        by: actor.nowhere
      - name: a
        where: {flavour: sour}
        by: actor.pod
        count: {min: 0}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_rules_load() -> None:
    rules = load_rules(builtin_rules_paths())
    assert sorted(r.id for r in rules) == [
        "exec-pivot",
        "imds-credential-theft",
        "internal-fanout",
        "recon-token-pivot",
        "sa-impersonation",
        "stolen-token-replay",
        "workload-pivot",
    ]


def test_good_file(tmp_path: Path) -> None:
    (rule,) = load_rules([write(tmp_path, "g.yaml", GOOD)])
    assert rule.within_ns == 90 * 10**9
    assert rule.techniques == ("T1046",)
    assert rule.path.endswith("g.yaml") and rule.line == 3


def test_every_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD)
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    errors = caught.value.errors
    expected = {
        2: "unknown operator 'between'",
        4: "'id' must be",
        5: "'severity' must be one of",
        6: "'within' must be a duration",
        7: "'techniques' must list",
        8: "unknown rule key 'colour'",
        9: "step names must be unique",
        11: "unknown signal 'nope'",
        12: "unknown field 'actor.nowhere'",
        14: "unknown field 'flavour'",
        16: "'count.min' must be",
    }
    for line, message in expected.items():
        assert any(e.startswith(f"{path}:{line}: ") and message in e for e in errors), (
            line,
            errors,
        )


def test_a_bad_file_blocks_the_good_ones(tmp_path: Path) -> None:
    good = write(tmp_path, "a.yaml", GOOD)
    bad = write(tmp_path, "b.yaml", "rules:\n  - id: x\n")
    with pytest.raises(RuleError) as caught:
        load_rules([good, bad])
    assert all(str(bad) in e for e in caught.value.errors)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "rules:\n  - id: x\n   bad: [\n")
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    assert caught.value.errors[0].startswith(f"{path}:")
    assert "invalid YAML" in caught.value.errors[0]


def test_duplicate_rule_ids_and_missing_paths(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", GOOD)
    two = write(tmp_path, "two.yaml", GOOD)
    with pytest.raises(RuleError) as caught:
        load_rules([one, two, tmp_path / "missing.yaml"])
    text = "\n".join(caught.value.errors)
    assert "rule id 'good-rule' already in" in text
    assert "missing.yaml:0: no such rule file" in text


def test_directory_and_user_signal_override(tmp_path: Path) -> None:
    write(tmp_path, "sig.yaml", "signals:\n  recon: {rule: My Scanner}\n")
    write(tmp_path, "r.yaml", GOOD)
    (rule,) = load_rules([tmp_path])
    assert rule.id == "good-rule"
    from correlation.testing import falco_event

    assert rule.matching_steps(falco_event("My Scanner")) == ["a"]
    assert rule.matching_steps(falco_event("LMD Network Scanner Launched in Pod")) == []


def test_signal_cycle_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "signals:\n  a: {signal: b}\n  b: {signal: a}\n")
    with pytest.raises(RuleError, match="refers to itself"):
        load_rules([path])


@pytest.mark.parametrize(
    ("text", "ns"),
    [("60s", 60 * 10**9), ("15m", 900 * 10**9), ("1h", 3600 * 10**9), ("250ms", 250 * 10**6)],
)
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "15", "15 m", "1d", 15, None, "-1s"])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None
