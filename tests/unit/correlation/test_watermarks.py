"""Per-input progress: the minimum over inputs, pushed inputs on the clock, clamped
clocks, idle inputs, restored checkpoints; and what the engine makes of them."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from correlation import snapshots
from correlation.engine import Engine, EngineConfig
from correlation.event import Event
from correlation.rules import ChainRule, load_rules
from correlation.state import EngineStats
from correlation.testing import SECOND, at, audit_event, falco_event
from correlation.watermarks import UNSEEN, Inputs, WatermarkConfig

CONFIG = WatermarkConfig(
    max_skew_ns=60 * SECOND, bound_floor_ns=SECOND // 4, bound_ceiling_ns=30 * SECOND
)
TWO_STEPS = """
rules:
  - id: two-steps
    severity: high
    within: 300s
    steps:
      - {name: scan, where: {rule: Scan}, by: actor.pod}
      - {name: use, where: {all: [{source: k8s_audit}, {verb: list}]}, by: actor.pod}
"""


def watermark(inputs: Inputs) -> int:
    inputs.update()
    return inputs.watermark


@pytest.fixture
def rules(tmp_path: Path) -> list[ChainRule]:
    path = tmp_path / "r.yaml"
    path.write_text(TWO_STEPS)
    return load_rules([path])


def test_the_watermark_is_the_slowest_active_input() -> None:
    inputs = Inputs(CONFIG)
    fast, slow = inputs.add("fast", False, 5 * SECOND), inputs.add("slow", False, 5 * SECOND)
    assert watermark(inputs) == UNSEEN  # slow has said nothing: it may start anywhere
    inputs.saw(fast, at(100), 0)
    inputs.saw(slow, at(10), 0)
    assert watermark(inputs) == at(5)
    inputs.saw(fast, at(3600), 0)
    assert watermark(inputs) == at(5)  # an input far ahead does not move it
    inputs.advance(0, at_end=["slow"])  # at its end, quiet: stops holding fast back
    assert watermark(inputs) == at(3595)


def test_watermark_never_moves_back() -> None:
    inputs = Inputs(CONFIG)
    inputs.saw(inputs.add("a", False, 0), at(50), 0)
    assert watermark(inputs) == at(50)
    inputs.add("late-comer", False, 0)
    assert watermark(inputs) == at(50)


def test_pushed_input_progresses_with_the_clock_by_its_learned_delay() -> None:
    inputs = Inputs(CONFIG)
    node = inputs.add("node", True, 10 * SECOND)
    for n in range(10):
        inputs.saw(node, at(n), at(n) + SECOND // 10)  # 100 ms on the way
    assert inputs.bound(node) == SECOND // 4  # 125 ms learned: the floor holds
    inputs.advance(at(20))
    assert watermark(inputs) == at(20) - SECOND // 4  # no event needed to move on
    inputs.saw(node, at(20), at(28))  # one batch 8 s late: the bound follows
    assert inputs.bound(node) == 10 * SECOND
    inputs.saw(node, at(21), at(21) + 3600 * SECOND)  # an hour: capped at the ceiling
    assert inputs.bound(node) == 30 * SECOND


def test_learned_delays_are_forgotten_after_the_window_of_arrivals() -> None:
    inputs = Inputs(CONFIG)
    node = inputs.add("node", True, 0)
    inputs.saw(node, at(0), at(20))
    assert inputs.bound(node) == 25 * SECOND
    later = at(20) + CONFIG.bound_window_ns + SECOND
    inputs.advance(later)  # quiet: a batching sender keeps its bound for its next batch
    assert inputs.bound(node) == 25 * SECOND
    inputs.saw(node, later, later + SECOND // 10)  # newer arrivals replace what it learned
    assert inputs.bound(node) == CONFIG.bound_floor_ns


def test_a_future_stamp_moves_its_input_only_to_now_plus_skew() -> None:
    inputs = Inputs(CONFIG)
    node = inputs.add("node", False, 0)
    assert not inputs.saw(node, at(86_400), at(0))  # one day ahead: clamped, reported
    assert node.max_seen_ns == at(0) and node.skewed == 1
    assert inputs.saw(node, at(61), at(1))  # a minute fast: within the skew, taken as stamped
    assert node.max_seen_ns == at(61)


def test_an_idle_input_rejoins_when_it_speaks() -> None:
    inputs = Inputs(CONFIG)
    a, b = inputs.add("a", False, 0), inputs.add("b", False, 0)
    inputs.saw(a, at(10), at(10))
    inputs.saw(b, at(50), at(10))
    inputs.advance(at(12), at_end=["a"])
    assert not a.idle  # quiet for 2 s only
    inputs.advance(at(16), at_end=["a"])
    assert a.idle and watermark(inputs) == at(50)
    inputs.saw(a, at(60), at(17))
    assert not a.idle


def test_restore_never_puts_progress_ahead_of_the_clock() -> None:
    inputs = Inputs(CONFIG)
    node = inputs.add("node", False, 0)
    inputs.saw(node, at(10_000), 0)  # no clock when it was seen (e.g. a bad replay)
    restored = Inputs(CONFIG)
    restored.restore([msgspec.structs.replace(node)], now_ns=at(0))
    assert restored.by_name["node"].max_seen_ns == at(0)


def chain_after_future_stamp(rules: list[ChainRule], ahead_s: int, restart: bool) -> list[str]:
    """A future-stamped event on the only input, then a real attack a second later."""
    config = EngineConfig(lateness_ns=5 * SECOND, watermarks=CONFIG)
    engine = Engine(rules, config)
    engine.add_input("apiserver", pushed=True)
    engine.process(audit_event("get", "pods", ahead_s), "apiserver", at(0))
    if restart:
        engine = Engine.restore(rules, config, engine.snapshot(), now_ns=at(0))
        engine.add_input("apiserver", pushed=True)
    out = engine.process(falco_event("Scan", 1), "apiserver", at(1))
    out += engine.process(audit_event("list", "secrets", 2), "apiserver", at(2))
    out += engine.advance(at(3))
    assert engine.stats().late == 0
    assert engine.stats().clock_skew == {"k8s_audit": 1}
    return [c.rule for c in out]


@pytest.mark.parametrize("ahead_s", [300, 86_400])
@pytest.mark.parametrize("restart", [False, True])
def test_a_future_stamped_event_does_not_blind_the_engine(
    rules: list[ChainRule], ahead_s: int, restart: bool
) -> None:
    assert chain_after_future_stamp(rules, ahead_s, restart) == ["two-steps"]


def test_a_checkpointed_future_watermark_is_clamped_on_restore(rules: list[ChainRule]) -> None:
    engine = Engine(rules, EngineConfig(lateness_ns=0))
    engine.process(falco_event("noise", 86_400))  # no clock: nothing clamped it
    restored = Engine.restore(rules, None, engine.snapshot(), now_ns=at(0))
    assert restored.watermark == at(0)
    assert Engine.restore(rules, None, engine.snapshot()).watermark == at(86_400)


def test_prompt_pushed_inputs_emit_a_second_after_the_last_evidence(
    rules: list[ChainRule],
) -> None:
    engine = Engine(rules, EngineConfig(lateness_ns=60 * SECOND, watermarks=CONFIG))
    engine.add_input("node", pushed=True)
    engine.add_input("apiserver", pushed=True)
    assert engine.process(falco_event("Scan", 0), "node", at(0)) == []
    assert engine.process(audit_event("list", "secrets", 40), "apiserver", at(40)) == []
    assert engine.advance(at(40) + SECOND // 10) == []  # within the 250 ms bound
    assert [c.rule for c in engine.advance(at(40) + SECOND // 2)] == ["two-steps"]


def test_late_event_that_would_complete_a_chain_is_counted(rules: list[ChainRule]) -> None:
    late: list[Event] = []
    engine = Engine(rules, EngineConfig(lateness_ns=5 * SECOND), on_late=late.append)
    engine.process(falco_event("Scan", 0))
    engine.process(falco_event("noise", 100))
    engine.process(audit_event("list", "secrets", 50))  # 45 s behind the watermark
    engine.process(audit_event("list", "secrets", 60, pod="nobody"))  # completes nothing
    stats = engine.stats()
    assert (stats.late, stats.late_chains_missed) == (2, 1)
    assert [e.time_ns for e in late] == [at(50), at(60)]
    (state,) = engine.inputs()
    assert state.late == 2 and state.late_max_ns == 35 * SECOND


def test_version_one_snapshot_still_loads(rules: list[ChainRule]) -> None:
    engine = Engine(rules)
    engine.process(falco_event("Scan", 0))
    snap = snapshots.decode(engine.snapshot())
    old = [1, at(0), snap.entries, snap.windows, [], snap.identity, snap.incidents, EngineStats()]
    restored = Engine.restore(rules, None, msgspec.msgpack.encode(old))
    assert restored.stats().partials == 1
    assert restored.watermark == at(0) - 60 * SECOND
    chains = restored.process(audit_event("list", "secrets", 10))
    assert chains + restored.flush() != []
