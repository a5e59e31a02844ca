"""The O(1) watermark step (``Inputs.moved``) and the engine's bare-time ticks
(``Engine.tick``) give exactly what the general paths give, on any sequence."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.engine import Engine
from correlation.event import FALCO, K8S_AUDIT, Event, time_only
from correlation.rules import ChainRule, load_rules
from correlation.testing import SECOND, at, audit_event, falco_event
from correlation.watermarks import Inputs, WatermarkConfig
from tests.unit.correlation.test_engine import TWO_STEPS

NAMES = ("a", "b", "c")
Step = tuple[int, int, int, bool]  # input, event time s, clock s, then at its end and quiet
kinds = st.tuples(st.booleans(), st.booleans(), st.booleans())  # pushed, per input
steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 300), st.integers(1, 400), st.booleans()),
    max_size=60,
)


def _replayed(
    pushed: tuple[bool, ...], sequence: list[Step], fast: bool
) -> list[tuple[int, str | None]]:
    """Watermark and holder after each step, the holder's moves through ``moved``
    (as the engine does) or always through the full ``update``."""
    inputs = Inputs(WatermarkConfig(bound_floor_ns=SECOND, bound_ceiling_ns=30 * SECOND))
    holder = None
    seen: list[tuple[int, str | None]] = []
    for number, time_s, clock_s, goes_idle in sequence:
        state = inputs.by_name.get(NAMES[number])
        if state is None or state.idle:  # joins or rejoins: the engine recomputes
            state = state or inputs.add(NAMES[number], pushed[number], 5 * SECOND)
            holder = None
        before = state.max_seen_ns
        inputs.saw(state, at(time_s), at(clock_s) if state.pushed else 0)
        if holder is None:
            holder = inputs.update()
        elif state is holder and state.max_seen_ns != before:
            holder = inputs.moved(state) if fast else inputs.update()
        if goes_idle:
            inputs.advance(0, at_end=[state.name])
            holder = None
        seen.append((inputs.watermark, holder.name if holder else None))
    return seen


@settings(max_examples=400, deadline=None)
@given(kinds, steps)
def test_moved_gives_the_watermark_and_holder_update_gives(
    pushed: tuple[bool, ...], sequence: list[Step]
) -> None:
    assert _replayed(pushed, sequence, fast=True) == _replayed(pushed, sequence, fast=False)


# (kind: 0 scan alert, 1 list request, 2 audit tick, 3 falco tick; time s; input)
items = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400), st.integers(0, 1)), max_size=80)


def _event(kind: int, time_s: int, number: int) -> Event:
    if kind == 0:
        return msgspec.structs.replace(falco_event("Scan", time_s), id=f"f{number}")
    if kind == 1:
        return msgspec.structs.replace(audit_event("list", "secrets", time_s), id=f"a{number}")
    return time_only(at(time_s), K8S_AUDIT if kind == 2 else FALCO)


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[ChainRule]:
    path = tmp_path_factory.mktemp("rules") / "two-steps.yaml"
    path.write_text(TWO_STEPS)
    return load_rules([path])


@settings(max_examples=200, deadline=None)
@given(sequence=items)
def test_a_bare_time_tick_is_the_time_only_event(
    rules: list[ChainRule], sequence: list[tuple[int, int, int]]
) -> None:
    general, bare = Engine(rules), Engine(rules)
    late: list[Event] = []
    bare.on_late = late.append
    general_late: list[Event] = []
    general.on_late = general_late.append
    for number, (kind, time_s, input_no) in enumerate(sequence):
        event, name = _event(kind, time_s, number), f"in{input_no}"
        expected = general.process(event, name)
        if event.id:
            got = bare.process(event, name)
        else:
            got = bare.tick(event.time_ns, event.source, name)
        assert [c.id for c in got] == [c.id for c in expected]
    assert [c.id for c in bare.flush()] == [c.id for c in general.flush()]
    assert bare.stats() == general.stats()
    assert late == general_late
    assert bare.snapshot() == general.snapshot()


def test_a_pushed_input_whose_bound_grows_takes_the_watermark_back() -> None:
    # the floor of the other inputs holds only while they are pulled: a pushed input's
    # watermark falls when a slow batch raises its delivery bound
    config = WatermarkConfig(bound_floor_ns=SECOND, bound_ceiling_ns=30 * SECOND)
    inputs = Inputs(config)
    file, node = inputs.add("file", False, 0), inputs.add("node", True, 60 * SECOND)
    inputs.saw(node, at(100), at(100))
    inputs.saw(file, at(50), 0)
    assert inputs.update() is file and inputs.watermark == at(50)
    inputs.saw(node, at(70), at(100))  # 30 s on the way: node's bound is now the ceiling
    inputs.saw(file, at(90), 0)
    assert inputs.moved(file) is node
    assert inputs.watermark == at(70)  # node's, below file's 90 s
