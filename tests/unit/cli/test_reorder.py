"""The batched reorder buffer behaves exactly like a sliding min-heap fed one event at a time."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.event import Event
from detector.commands._reorder import Reorder


def _event(number: int, time_ns: int) -> Event:
    return Event(time_ns=time_ns, source="falco", id=f"e{number}")


def _sliding_heap(events: list[Event], size: int) -> list[Event]:
    """The reference: push each event; once ``size`` are held, each push emits the minimum."""
    heap: list[tuple[int, int, Event]] = []
    out = []
    for seq, event in enumerate(events):
        if len(heap) < size:
            heapq.heappush(heap, (event.time_ns, seq, event))
        else:
            out.append(heapq.heappushpop(heap, (event.time_ns, seq, event))[2])
    out += [item[2] for item in sorted(heap)]
    return out


@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(st.integers(0, 40), max_size=120),
    size=st.integers(1, 12),
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=40),
)
def test_batches_match_the_sliding_heap(times: list[int], size: int, cuts: list[int]) -> None:
    # small time range: many ties, and both in-order and disordered batches
    events = [_event(n, t) for n, t in enumerate(times)]
    buffer = Reorder(size)
    out = _pushed_in_cuts(buffer, events, cuts)
    assert [e.id for e in out] == [e.id for e in _sliding_heap(events, size)]
    assert buffer.worst_ns == _worst_regression(out)


def _pushed_in_cuts(buffer: Reorder, events: list[Event], cuts: list[int]) -> list[Event]:
    """Everything out of ``buffer`` when ``events`` arrive in batches of the ``cuts`` sizes."""
    out, start = [], 0
    for cut in cuts * (len(events) + 1):
        if start >= len(events):
            break
        out += buffer.push(events[start : start + cut])
        start += cut
    return out + buffer.drain()


def _worst_regression(out: list[Event]) -> int:
    """How much older than an earlier one an event came out, at most."""
    latest, worst = -1, 0
    for event in out:
        worst = max(worst, latest - event.time_ns)
        latest = max(latest, event.time_ns)
    return worst


def test_in_order_input_passes_through_in_order() -> None:
    events = [_event(n, n // 3) for n in range(50)]
    buffer = Reorder(8)
    out = buffer.push(events[:20]) + buffer.push(events[20:]) + buffer.drain()
    assert out == events
    assert buffer.worst_ns == 0


def test_disorder_larger_than_the_buffer_is_passed_on_not_lost() -> None:
    events = [_event(0, 10), _event(1, 11), _event(2, 12), _event(3, 1)]
    buffer = Reorder(2)
    out = buffer.push(events) + buffer.drain()
    assert [e.id for e in out] == ["e0", "e3", "e1", "e2"]  # e3 came too late for e0
    assert buffer.worst_ns == 9
    assert sorted(e.id for e in out) == ["e0", "e1", "e2", "e3"]


@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(st.integers(0, 40), max_size=120),
    size=st.integers(1, 12),
    pass_ns=st.integers(0, 20),
    cuts=st.lists(st.integers(1, 30), min_size=1, max_size=40),
)
def test_an_open_buffer_passes_on_until_the_first_larger_lag(
    times: list[int], size: int, pass_ns: int, cuts: list[int]
) -> None:
    events = [_event(n, t) for n, t in enumerate(times)]
    buffer = Reorder(size, pass_ns)
    out = _pushed_in_cuts(buffer, events, cuts)
    # arrival order up to the first event lagging more than pass_ns, the heap after it
    switch, latest = len(events), -1
    for at, event in enumerate(events):
        if latest - event.time_ns > pass_ns:
            switch = at
            break
        latest = max(latest, event.time_ns)
    expected = events[:switch] + _sliding_heap(events[switch:], size)
    assert [e.id for e in out] == [e.id for e in expected]
    assert buffer.worst_ns == _worst_regression(out)  # what passed open counts too


def test_an_open_buffer_keeps_small_disorder_as_it_came() -> None:
    events = [_event(0, 10), _event(1, 8), _event(2, 12), _event(3, 9)]
    buffer = Reorder(8, pass_ns=3)
    out = buffer.push(events) + buffer.drain()
    assert out == events
    assert buffer.worst_ns == 3
