"""The batch queue between the sources and the engine: room in events, batches in order,
progress only when done, backpressure for emitters, and the engine's view of it.

A real :class:`Correlator` and engine with the shipped rules drive the last test; its
output keeps the records and what the queue said was processed when each arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from correlation.engine import Engine
from correlation.event import Event
from correlation.rules import builtin_rules_paths, load_rules
from detector.metrics import Metrics
from detector.parse import parse_document
from detector.pipeline import Correlator, EventQueue
from tests.integration.run import scenario


def events(first: int, count: int) -> list[Event]:
    return [Event(time_ns=1_772_359_200 * 10**9 + n, source="falco", id=f"e-{n}")
            for n in range(first, first + count)]  # fmt: skip


def ids(found: Any) -> list[str]:
    return [e.id for e in found]


def test_room_is_counted_in_events_and_an_offer_is_all_or_none() -> None:
    queue = EventQueue(10, Metrics())
    assert queue.offer("k8s_audit", events(0, 6), "api")
    assert queue.room() == 4 and len(queue) == 6
    assert not queue.offer("k8s_audit", events(6, 5), "api")  # 5 > 4: none of them
    assert len(queue) == 6
    assert queue.offer("k8s_audit", events(6, 4), "api")
    assert queue.room() == 0
    queue.close()
    assert queue.room() == 0 and not queue.offer("k8s_audit", events(10, 1), "api")


async def test_batches_come_out_in_order_in_runs_of_at_most_the_limit() -> None:
    queue = EventQueue(100, Metrics(), clock=lambda: 7)
    queue.offer("k8s_audit", events(0, 5), "api-1")
    queue.offer("falco_http", events(5, 2), "node-a", arrived=3)
    runs = [await queue.get_batch(3) for _ in range(3)]
    assert [(s, i, a, ids(e)) for s, i, a, e in runs] == [
        ("k8s_audit", "api-1", 7, ["e-0", "e-1", "e-2"]),
        ("k8s_audit", "api-1", 7, ["e-3", "e-4"]),  # the rest of the batch, not the next
        ("falco_http", "node-a", 3, ["e-5", "e-6"]),
    ]
    assert queue.room() == 100  # room frees when taken ...
    assert queue.waiting("k8s_audit") == 5  # ... progress only when done
    queue.done_many("k8s_audit", 5)
    assert queue.processed("k8s_audit") == 5 and queue.waiting("k8s_audit") == 0


async def test_drained_waits_for_every_accepted_event_to_be_done() -> None:
    queue = EventQueue(100, Metrics())
    queue.offer("k8s_audit", events(0, 4), "api")
    source, _, _, taken = await queue.get_batch(10)
    waiter = asyncio.create_task(queue.drained())
    queue.done_many(source, 3)
    await asyncio.sleep(0.01)
    assert not waiter.done()
    queue.done_many(source, 1)
    await asyncio.wait_for(waiter, 1)


async def test_a_taken_batch_wakes_every_emitter_waiting_for_room() -> None:
    queue = EventQueue(2, Metrics())
    queue.offer("k8s_audit", events(0, 2), "api")  # full
    emits = [queue.emitter(name, pushed=False) for name in ("falco_file", "audit_file")]
    blocked = [asyncio.create_task(emit(e)) for emit, e in zip(emits, events(2, 2), strict=True)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in blocked)
    await queue.get_batch(10)  # two slots free at once: both emitters go on
    await asyncio.wait_for(asyncio.gather(*blocked), 1)
    assert len(queue) == 2 and queue.pushed["falco_file"] is False


async def test_one_at_a_time_takes_walk_through_batches_and_count_per_source() -> None:
    queue = EventQueue(100, Metrics())
    queue.offer("events", events(0, 2), "relay")
    queue.offer("falco_http", events(2, 1), "node-a")
    assert queue.get_nowait().id == "e-0"
    assert (await queue.get()).id == "e-1"
    assert (await queue.get_item())[:2] == ("falco_http", "node-a")
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    for _ in range(3):
        queue.done()
    assert queue.processed("events") == 2 and queue.processed("falco_http") == 1
    await asyncio.wait_for(queue.drained(), 1)


async def test_a_cancelled_getter_does_not_swallow_the_next_batch() -> None:
    queue = EventQueue(100, Metrics())
    first = asyncio.create_task(queue.get_batch(10))
    second = asyncio.create_task(queue.get_batch(10))
    await asyncio.sleep(0)
    queue.offer("k8s_audit", events(0, 1), "api")  # wakes the first getter ...
    first.cancel()  # ... which is cancelled before it runs
    _, _, _, taken = await asyncio.wait_for(second, 1)
    assert ids(taken) == ["e-0"]


async def test_the_engine_is_done_with_a_chains_evidence_before_its_record_is_sent() -> None:
    """A checkpoint taken while a record waits on the output covers exactly the events
    the engine has seen: up to the event that confirmed the chain, not the rest of the run."""
    scenario.rebase()
    metrics, hour = Metrics(), 3600 * 10**9
    # the receiving clock well past the stream: no event is ahead of it (skew-clamped)
    queue = EventQueue(100, metrics, clock=lambda: scenario.at(2) + 2 * hour)
    attack = [e for a in scenario.falco_alerts() for e in parse_document(orjson.dumps(a))]
    attack += parse_document(orjson.dumps(scenario.event_list()))
    # later events of the same input: its watermark passes the chain's window
    later = [Event(time_ns=scenario.at(2) + hour + n, source="k8s_audit", id=f"later-{n}")
             for n in range(3)]  # fmt: skip
    queue.pushed["file"] = False  # one pulled input: its own events move its time
    assert queue.offer("audit_file", [*attack, *later], "file")
    output = Recorder(lambda: queue.processed("audit_file"))
    correlator = Correlator(Engine(load_rules(builtin_rules_paths())), queue, output, metrics)
    await run_until_drained(correlator, queue)
    assert output.seen == [(scenario.RULE, len(attack) + 1)]  # confirmed by later-0
    assert queue.processed("audit_file") == len(attack) + len(later)


async def run_until_drained(correlator: Correlator, queue: EventQueue) -> None:
    """Run the correlator until every queued event is done, then stop it."""
    task = asyncio.create_task(correlator.run())
    try:
        await asyncio.wait_for(queue.drained(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Recorder:
    """An Output keeping, per record, what the queue said was processed when it came."""

    def __init__(self, processed: Callable[[], int]) -> None:
        self._processed = processed
        self.seen: list[tuple[str, int]] = []

    async def submit(self, record: dict[str, Any]) -> None:
        self.seen.append((record["rule"], self._processed()))

    async def run(self) -> None:
        return None

    async def close(self, grace_s: float) -> None:
        return None
