"""Time-only ticks in the engine: they move event time and are counted, nothing else."""

from __future__ import annotations

from pathlib import Path

from correlation.engine import Engine
from correlation.event import K8S_AUDIT, time_only
from correlation.rules import load_rules
from correlation.testing import SECOND, at, audit_event, falco_event
from tests.unit.correlation.test_engine import TWO_STEPS


def _engine(tmp_path: Path) -> Engine:
    path = tmp_path / "r.yaml"
    path.write_text(TWO_STEPS)
    return Engine(load_rules([path]))


def test_a_tick_advances_event_time_and_settles_a_chain(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert not engine.process(falco_event("Scan", 0))
    assert not engine.process(audit_event("list", "secrets", 10))
    # nothing else arrives but ticks: their time alone settles the chain
    chains = engine.process(time_only(at(10) + 61 * SECOND, K8S_AUDIT))
    assert [c.rule for c in chains] == ["two-steps"]
    stats = engine.stats()
    assert (stats.events, stats.time_only, stats.late) == (3, 1, 0)


ANY_BUT_GET = """
rules:
  - id: scan-then-anything
    severity: high
    within: 60s
    steps:
      - {name: scan, where: {rule: Scan}, by: actor.pod}
      - {name: any, where: {all: [{source: k8s_audit}, {verb: {not_in: [get]}}]}, by: actor.pod}
"""


def test_a_tick_is_never_evidence_and_late_ticks_count_as_late(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(ANY_BUT_GET)
    engine = Engine(load_rules([path]))
    engine.process(falco_event("Scan", 0))
    # a tick looks like an audit event with no verb and no actor, which this rule's second
    # step would take if a tick were offered to steps at all
    engine.process(time_only(at(5), K8S_AUDIT))
    engine.process(time_only(at(500), K8S_AUDIT))
    engine.process(time_only(at(1), K8S_AUDIT))  # older than the watermark
    stats = engine.stats()
    assert (stats.events, stats.time_only, stats.late) == (4, 2, 1)
    assert not engine.flush()


def test_a_tick_moves_its_own_input_and_so_the_engine_watermark(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.add_input("falco", pushed=False)
    engine.add_input("audit", pushed=False)
    engine.process(falco_event("Scan", 100), input="falco")
    engine.process(audit_event("list", "secrets", 10), input="audit")
    before = engine.watermark
    assert before == engine.input_watermark("audit")  # the audit input holds it back
    # only ticks arrive from the audit input (all its noise was rejected early)
    engine.process(time_only(at(90), K8S_AUDIT), input="audit")
    assert engine.input_watermark("audit") == at(90) - engine.config.lateness_ns
    assert engine.watermark > before
