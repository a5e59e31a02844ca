"""The buffered events of one rule: one dict per step keyed by the join tuple.

Each bucket is a list sorted by ``(time_ns, id)`` (:func:`~correlation.matcher.sort_key`),
so the matcher can bisect it and duplicates (a re-delivered audit batch) are found in
O(log n). ``windows`` remembers, per key, the anchors of chains already emitted, so a later
anchor inside such a window is absorbed instead of opening a second chain. The engine
owns the accounting (live count, expiry heap); this class only keeps the lists.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from correlation.event import Event
from correlation.matcher import sort_key
from correlation.rules.model import ChainRule

Key = tuple[str, ...]
EMPTY: Final[list[Event]] = []


class RuleBuffers:
    """Step events and emitted windows of one rule."""

    __slots__ = ("rule", "steps", "windows", "first_stage")

    def __init__(self, rule: ChainRule) -> None:
        self.rule = rule
        self.steps: list[dict[Key, list[Event]]] = [{} for _ in rule.steps]
        self.windows: dict[Key, list[tuple[int, str]]] = {}
        self.first_stage = rule.stages[0]

    def add(self, step_no: int, key: Key, event: Event) -> list[Event] | None:
        """Insert in order; the bucket, or ``None`` when the event is already there."""
        bucket = self.steps[step_no].setdefault(key, [])
        at = bisect_left(bucket, sort_key(event), key=sort_key)
        if at < len(bucket) and bucket[at].id == event.id:
            return None
        bucket.insert(at, event)
        return bucket

    def remove(self, step_no: int, key: Key, event: Event) -> bool:
        """Take ``event`` out of its bucket (dropping an empty bucket); False if absent."""
        steps = self.steps[step_no]
        bucket = steps.get(key)
        if not bucket:
            return False
        at = bisect_left(bucket, sort_key(event), key=sort_key)
        if at >= len(bucket) or bucket[at].id != event.id:
            return False
        del bucket[at]
        if not bucket:
            del steps[key]
        return True

    def has_anchor(self, key: Key) -> bool:
        """Whether any first-stage event is buffered under ``key``."""
        return any(self.steps[s].get(key) for s in self.first_stage)

    def anchors(self, key: Key) -> list[tuple[int, Event]]:
        """``(step, event)`` of every first-stage event under ``key``, oldest first."""
        stage = self.first_stage
        if len(stage) == 1:
            return [(stage[0], e) for e in self.steps[stage[0]].get(key, EMPTY)]
        found = [(s, e) for s in stage for e in self.steps[s].get(key, EMPTY)]
        return sorted(found, key=lambda item: sort_key(item[1]))

    def anchor_keys(self) -> list[Key]:
        """Every key with a first-stage event, sorted (flush decides them in this order)."""
        return sorted({k for step in self.first_stage for k in self.steps[step]})

    def lists(self, key: Key) -> list[list[Event]]:
        """The bucket of every step under ``key`` (empty lists where none)."""
        return [d.get(key, EMPTY) for d in self.steps]

    def in_window(self, key: Key, start: int) -> bool:
        """Whether ``start`` falls inside the window of a chain already emitted for ``key``."""
        within = self.rule.within_ns
        return any(a <= start <= a + within for a, _ in self.windows.get(key, ()))

    def open_window(self, key: Key, anchor_ns: int, chain_id: str) -> None:
        self.windows.setdefault(key, []).append((anchor_ns, chain_id))

    def close_window(self, key: Key) -> None:
        """Forget the oldest emitted window of ``key`` (it expired)."""
        windows = self.windows.get(key)
        if windows:
            windows.pop(0)
            if not windows:
                del self.windows[key]

    def clear(self) -> None:
        self.steps = [{} for _ in self.rule.steps]
        self.windows.clear()
