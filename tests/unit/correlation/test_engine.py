"""Engine semantics: windows, lateness, expiry, caps, suppression, held alerts, snapshots."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from correlation.allowlist import Allowlist
from correlation.chain import Chain
from correlation.engine import Engine, EngineConfig
from correlation.errors import SnapshotError
from correlation.event import Event
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from correlation.testing import SECOND, at, audit_event, falco_event, run

TWO_STEPS = """
rules:
  - id: two-steps
    severity: high
    within: 60s
    steps:
      - {name: scan, where: {rule: Scan}, by: actor.pod}
      - {name: use, where: {all: [{source: k8s_audit}, {verb: list}]}, by: actor.pod}
"""


@pytest.fixture
def rules(tmp_path: Path) -> list[ChainRule]:
    path = tmp_path / "r.yaml"
    path.write_text(TWO_STEPS)
    return load_rules([path])


def scan(t: float, **kw: object) -> Event:
    return falco_event("Scan", t, **kw)  # type: ignore[arg-type]


def use(t: float | int, **kw: object) -> Event:
    return audit_event("list", "secrets", 0, id=f"use-{t}", **kw)  # type: ignore[arg-type]


def at_ns(event: Event, time_ns: int) -> Event:
    return msgspec.structs.replace(event, time_ns=time_ns)


def test_window_edge_exact_passes_one_ns_over_fails(rules: list[ChainRule]) -> None:
    edge = at_ns(use(0), at(0) + 60 * SECOND)
    over = at_ns(use(1), at(0) + 60 * SECOND + 1)
    assert len(run(Engine(rules), [scan(0), edge])) == 1
    assert run(Engine(rules), [scan(0), over]) == []


def test_emitted_once_its_last_evidence_settles(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(lateness_ns=10 * SECOND))
    assert engine.process(scan(0)) == []
    assert engine.process(at_ns(use(0), at(5))) == []  # watermark -5 s: an earlier use may come
    assert engine.process(scan(15, pod="other")) == []  # watermark 5 s: not past the use yet
    chains = engine.process(scan(15.5, pod="other"))  # 5.5 s: every event up to 5 s is in
    assert [c.rule for c in chains] == ["two-steps"]
    assert engine.flush() == []  # emitted long before the window (60 s) closed


def test_idle_input_at_its_end_lets_its_last_chain_out(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(lateness_ns=10 * SECOND))
    engine.process(scan(0))
    engine.process(at_ns(use(0), at(5)))
    assert engine.advance(0, at_end=["other"]) == []  # not this input
    assert [c.rule for c in engine.advance(0, at_end=[""])] == ["two-steps"]
    assert engine.inputs()[0].idle


def test_late_events_are_counted_and_handed_over(rules: list[ChainRule]) -> None:
    late: list[Event] = []
    engine = Engine(rules, EngineConfig(lateness_ns=10 * SECOND), on_late=late.append)
    engine.process(scan(100))
    old = scan(89)
    assert engine.process(old) == []
    assert late == [old]
    assert engine.stats().late == 1
    engine.process(scan(90))  # exactly at the watermark: on time
    assert engine.stats().late == 1


def test_out_of_order_within_lateness_still_matches(rules: list[ChainRule]) -> None:
    chains = run(Engine(rules), [at_ns(use(0), at(30)), scan(0)])
    assert len(chains) == 1
    assert [s.step for s in chains[0].steps] == ["scan", "use"]


def test_expiry_frees_idle_keys(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(lateness_ns=SECOND))
    for i in range(20):
        engine.process(scan(0, pod=f"p{i}"))
    assert engine.stats().partials == 20
    engine.process(falco_event("noise", 62))  # watermark 61 s: past every window
    assert engine.stats().partials == 0
    assert engine.stats().evictions == {}  # expiry is not an eviction


def test_per_key_cap_evicts_oldest(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(max_partials_per_key=3))
    for i in range(5):
        engine.process(scan(i))
    stats = engine.stats()
    assert stats.partials == 3 and stats.evictions["key_cap"] == 2


def test_total_cap_evicts_oldest(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(max_partials_total=4))
    for i in range(6):
        engine.process(scan(i, pod=f"p{i}"))
    assert engine.stats().partials == 4
    assert engine.stats().evictions["total_cap"] == 2
    # the two oldest keys are gone; the newest still completes
    chains = run(engine, [at_ns(use(0, pod="p5"), at(10)), at_ns(use(1, pod="p0"), at(10))])
    assert [c.entities["pods"] for c in chains] == [("shop/p5",)]


def test_global_allowlist_and_rule_suppress(rules: list[ChainRule], tmp_path: Path) -> None:
    allow = EngineConfig(allowlist=Allowlist(images=("docker.io/library/*",)))
    assert run(Engine(rules, allow), [scan(0), use(1)]) == []
    path = tmp_path / "s.yaml"
    path.write_text(
        TWO_STEPS.replace("within: 60s", "within: 60s\n    suppress: {namespaces: [sh*]}")
    )
    engine = Engine(load_rules([path]))
    assert run(engine, [scan(0), at_ns(use(1), at(1))]) == []
    assert engine.stats().suppressed == 2


def test_later_anchors_inside_a_window_are_absorbed(rules: list[ChainRule]) -> None:
    engine = Engine(rules)
    chains = run(engine, [scan(0), scan(10), at_ns(use(0), at(20)), scan(30), scan(70)])
    assert len(chains) == 1
    assert engine.stats().absorbed == 2


def test_one_event_never_serves_two_steps(tmp_path: Path) -> None:
    path = tmp_path / "same.yaml"
    path.write_text(
        "rules:\n  - id: twice\n    severity: low\n    within: 60s\n    steps:\n"
        "      - {name: a, where: {rule: X}, by: actor.pod}\n"
        "      - {name: b, where: {rule: X}, by: actor.pod}\n"
    )
    rules = load_rules([path])
    assert run(Engine(rules), [falco_event("X", 0)]) == []
    (chain,) = run(Engine(rules), [falco_event("X", 0), falco_event("X", 1)])
    assert [s.event.time_ns for s in chain.steps] == [at(0), at(1)]


def test_container_only_alert_waits_for_its_pod() -> None:
    rules = load_rules(builtin_rules_paths())
    upstream = falco_event(
        "Contact EC2 Instance Metadata Service From Container", 0, pod="", namespace=""
    )
    teacher = falco_event("LMD Service Account Token Read", 5, tags=("T1528",))
    engine = Engine(rules)
    chains = run(engine, [upstream, teacher])
    (chain,) = [c for c in chains if c.rule == "imds-credential-theft"]
    assert chain.steps[0].event.actor.pod_ref == "shop/web-1"  # resolved from the container
    # and in the other order, the binding is already known
    again = [c for c in run(Engine(rules), [teacher, upstream]) if c.rule == chain.rule]
    assert [c.id for c in again] == [chain.id]


def test_pending_cap_releases_oldest() -> None:
    engine = Engine(load_rules(builtin_rules_paths()), EngineConfig(max_pending=2))
    for i in range(4):
        engine.process(falco_event("Terminal shell in container", i, pod="", container_id=f"c{i}"))
    stats = engine.stats()
    assert stats.pending == 2 and stats.evictions["pending_cap"] == 2


def test_snapshot_restore_keeps_the_chain_and_its_id(rules: list[ChainRule]) -> None:
    reference = run(Engine(rules), [scan(0), at_ns(use(0), at(30))])
    engine = Engine(rules)
    engine.process(scan(0))
    data = engine.snapshot()
    restored = Engine.restore(rules, None, data)
    assert restored.stats().partials == 1
    chains = run(restored, [at_ns(use(0), at(30))])
    assert [c.id for c in chains] == [c.id for c in reference] != []


def test_restore_rejects_garbage(rules: list[ChainRule]) -> None:
    with pytest.raises(SnapshotError):
        Engine.restore(rules, None, b"\x00not msgpack")


def test_incident_stitches_chains_sharing_a_pod() -> None:
    rules = load_rules(builtin_rules_paths())
    events = [
        falco_event("LMD Network Scanner Launched in Pod", 0, tags=("T1046",)),
        audit_event("create", "pods", 30, namespace="payments", name="db-0", subresource="exec"),
        falco_event("Terminal shell in container", 40, namespace="payments", pod="db-0"),
        falco_event(
            "LMD Cloud Metadata Service Contacted",
            50,
            namespace="payments",
            pod="db-0",
            container_id="c2",
            tags=("T1552.005",),
        ),
        falco_event(
            "LMD Network Scanner Launched in Pod",
            55,
            namespace="payments",
            pod="db-0",
            container_id="c2",
            tags=("T1046",),
        ),
    ]
    chains: list[Chain] = run(Engine(rules), events)
    by_rule = {c.rule: c for c in chains}
    assert {"recon-token-pivot", "exec-pivot", "imds-credential-theft"} <= set(by_rule)
    assert len({c.incident for c in chains}) == 1
    assert by_rule["imds-credential-theft"].path == ("shop/web-1", "payments/db-0")
