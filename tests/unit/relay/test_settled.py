"""The relay's settled prefix: out-of-order settling never lets the covered count pass an
event still held, and the resolver's copies (pod filled in) settle their originals."""

from __future__ import annotations

import msgspec

from correlation.event import Event
from detector.relay.settled import Settlement


def event(n: int) -> Event:
    return Event(time_ns=1_772_359_200_000_000_000 + n, source="falco", id=f"e-{n}")


def test_the_prefix_stops_at_the_oldest_event_not_settled() -> None:
    settlement = Settlement(lambda source: source == "falco_http")
    taken = [event(n) for n in range(5)]
    for item in taken:
        settlement.took("falco_http", item)
    settlement.settle([taken[0], taken[1], taken[3], taken[4]])  # taken[2] is held
    assert settlement.logged() == 2
    assert settlement.pending(taken[2]) and settlement.is_logged(taken[2])
    settlement.settle([taken[2]])
    assert settlement.logged() == 5 and not settlement.pending(taken[2])


def test_unlogged_events_hold_the_prefix_but_are_not_counted() -> None:
    settlement = Settlement(lambda source: source == "falco_http")
    a, b, c = event(0), event(1), event(2)
    settlement.took("falco_http", a)
    settlement.took("falco_file", b)  # a tailer's line: not in the intake log
    settlement.took("falco_http", c)
    settlement.settle([a, c])
    assert settlement.logged() == 1  # c waits behind b
    assert not settlement.is_logged(b)
    settlement.settle([b])
    assert settlement.logged() == 2


def test_a_resolved_copy_settles_the_event_taken() -> None:
    settlement = Settlement(lambda _source: True)
    original = event(0)
    settlement.took("falco_http", original)
    copy = msgspec.structs.replace(original, summary="pod filled in")
    assert copy is not original
    settlement.settle([copy])
    assert settlement.logged() == 1


def test_two_events_with_one_key_never_pass_the_one_still_held() -> None:
    settlement = Settlement(lambda _source: True)
    first, second = event(0), event(0)  # the same id and time, taken twice
    settlement.took("falco_http", first)
    settlement.took("falco_http", second)
    settlement.settle([first])  # marks the newer slot: the older one still holds the prefix
    assert settlement.logged() == 0
    settlement.settle([second])
    assert settlement.logged() == 2
