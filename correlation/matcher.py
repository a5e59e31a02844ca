"""Find the evidence of one chain: given an anchor, pick events for every step.

Pure and deterministic: inputs are the per-step event lists of one join key,
each sorted by ``(time_ns, id)``; the answer depends only on their contents.

Greedy earliest-first is optimal for ordered stages (the earliest event of a
stage leaves the most room for the stages after it), so required steps are
picked first, stage by stage; optional steps are then filled with the earliest
event that fits between their neighbours, so they never cost a match, and never
later than the last required event — so a match is final once every event up to
its last required event is known (the engine emits it then, not at the deadline)::

    anchor                        anchor + within
      |----------------------------------|
      A ........ (b?) ........ C             A: stage 0, (b?) optional, C: stage 2
      t0         tb            tc            t0 <= tb <= tc <= t0 + within

No event serves two steps of one chain.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from operator import attrgetter
from typing import Final

from correlation.event import Event
from correlation.rules.model import ChainRule, Step

Picked = dict[int, list[Event]]
NEVER: Final = 1 << 62


# The total order of events inside the engine: ``(time_ns, id)``. An attrgetter, not a
# function: the buffers' and the matcher's bisects call it at every probe (~190k calls
# over the 2e5 disordered stream), and in C it costs a fraction of a Python call.
sort_key: Final[Callable[[Event], tuple[int, str]]] = attrgetter("time_ns", "id")


def last_time(picked: Picked) -> int:
    """Event time of the latest evidence of a match."""
    return max(events[-1].time_ns for events in picked.values())


def find_match(
    rule: ChainRule, lists: list[list[Event]], anchor_step: int, anchor: Event
) -> Picked | None:
    """Evidence per step index for a chain starting at ``anchor``, or ``None``."""
    deadline = anchor.time_ns + rule.within_ns
    used = {anchor.id}
    picked: Picked = {}
    ends: list[int] = []  # latest event time of each stage
    lower = anchor.time_ns
    for number, stage in enumerate(rule.stages):
        end = lower
        for index in stage:
            step = rule.steps[index]
            if step.optional:
                continue
            first = anchor if number == 0 and index == anchor_step else None
            after = sort_key(anchor) if number == 0 else (lower, "")
            events = _pick(step, lists[index], after, deadline, used, first)
            if events is None:
                return None
            picked[index] = events
            used.update(e.id for e in events)
            end = max(end, events[-1].time_ns)
        ends.append(end)
        lower = end
    _fill_optional(rule, lists, picked, ends, used, anchor)
    return picked


def _pick(
    step: Step,
    events: list[Event],
    after: tuple[int, str],
    deadline: int,
    used: set[str],
    first: Event | None,
) -> list[Event] | None:
    """Earliest events of ``step`` in ``[after, deadline]`` reaching its count."""
    chosen: list[Event] = []
    seen: set[str] = set()
    if first is not None:
        _take(step, first, chosen, seen)
    start = bisect_left(events, after, key=sort_key)
    for event in events[start:]:
        if len(chosen) >= step.count:
            break
        if event.time_ns > deadline:
            break
        if event.id in used or (first is not None and event.id == first.id):
            continue
        _take(step, event, chosen, seen)
    return chosen if len(chosen) >= step.count else None


def _take(step: Step, event: Event, chosen: list[Event], seen: set[str]) -> None:
    """Add ``event`` unless a distinct count is asked and its value is already counted."""
    if step.distinct_fn is None:
        chosen.append(event)
        return
    values = step.distinct_fn(event)
    if values and values[0] not in seen:
        seen.add(values[0])
        chosen.append(event)


def _fill_optional(
    rule: ChainRule,
    lists: list[list[Event]],
    picked: Picked,
    ends: list[int],
    used: set[str],
    anchor: Event,
) -> None:
    for number, stage in enumerate(rule.stages):
        lower = anchor.time_ns if number == 0 else ends[number - 1]
        upper = min(
            (
                picked[i][0].time_ns
                for later in rule.stages[number + 1 :]
                for i in later
                if i in picked
            ),
            default=ends[-1],  # never past the last required evidence (see the docstring)
        )
        for index in stage:
            step = rule.steps[index]
            if not step.optional:
                continue
            events = _pick(step, lists[index], (lower, ""), upper, used, None)
            if events is not None:
                picked[index] = events
                used.update(e.id for e in events)
