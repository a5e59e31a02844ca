"""The step index drops steps whose predicate needs an identity field the event lacks."""

from __future__ import annotations

from pathlib import Path

from correlation.index import StepIndex
from correlation.rules import builtin_rules_paths, load_rules
from correlation.testing import audit_event

RULE = """
rules:
  - id: t
    severity: low
    within: 60s
    steps:
      - name: sa-any
        by: actor.pod
        where:
          all:
            - source: k8s_audit
            - actor.service_account: {exists: true}
      - name: either
        by: actor.pod
        where:
          any:
            - actor.service_account: {exists: true}
            - verb: get
"""


def _index(tmp_path: Path) -> tuple[StepIndex, object]:
    path = tmp_path / "r.yaml"
    path.write_text(RULE)
    rules = load_rules([path])
    return StepIndex(rules), rules[0]


def test_needs_are_collected_through_all_not_any(tmp_path: Path) -> None:
    _, rule = _index(tmp_path)
    assert rule.step("sa-any").where.needs == {"actor.service_account"}  # type: ignore[attr-defined]
    assert rule.step("either").where.needs == frozenset()  # type: ignore[attr-defined]


def test_event_without_the_field_skips_the_step(tmp_path: Path) -> None:
    index, _ = _index(tmp_path)
    person = audit_event("list", "pods", sa="", user="alice")
    account = audit_event("list", "pods", sa="shop:web")
    # "either" has no index hint an event must carry (an ``any`` needs nothing): kept
    assert index.candidates(person) == ((0, 1),)
    assert index.candidates(account) == ((0, 1), (0, 0))
    # memoized per flags: the same (verb, resource) with and without the field differ
    assert index.candidates(person) == ((0, 1),)


def test_builtin_token_replay_needs_pod_and_account() -> None:
    rules = load_rules(builtin_rules_paths())
    step = next(r for r in rules if r.id == "stolen-token-replay").step("token-replayed")
    assert step.where.needs == {"actor.service_account", "actor.pod"}
    index = StepIndex(rules)
    no_pod = audit_event("get", "configmaps", sa="shop:web", pod="")
    refs = {(rules[r].id, rules[r].steps[s].name) for r, s in index.candidates(no_pod)}
    assert ("stolen-token-replay", "token-replayed") not in refs
    with_pod = audit_event("get", "configmaps", sa="shop:web", pod="web-1")
    refs = {(rules[r].id, rules[r].steps[s].name) for r, s in index.candidates(with_pod)}
    assert ("stolen-token-replay", "token-replayed") in refs
