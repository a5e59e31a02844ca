"""A member whose revoke takes longer than its session timeout keeps its place in the group.

On a rebalance every member first commits what it owns (``Member.on_partitions_revoked``:
one last transaction with a snapshot per partition) and only then rejoins. The broker
waits for the rejoin up to the member's *rebalance* timeout, which aiokafka sets to the
session timeout unless told otherwise; a member that owned many partitions on a loaded
machine missed it, was removed from the group, and the new owners fenced its producers
(six aborted transactions in one run of the join test). The worker's consumer gives it
the max poll interval instead, as Java's client does.

Real broker, two consumers built exactly as the worker builds its own
(:meth:`Member.new_consumer`); the slow revoke is a stand-in listener that sleeps past
the session timeout (a real one would need a loaded machine to be that slow).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRebalanceListener

from detector.worker.config import WorkerConfig
from detector.worker.member import Member
from tests.integration.scaleout import harness

SESSION_S = 6.0


class Recorder(ConsumerRebalanceListener):  # type: ignore[misc]
    """Every assignment a consumer got, in order; a revoke that takes ``revoke_s``."""

    def __init__(self, revoke_s: float = 0.0) -> None:
        self.revoke_s = revoke_s
        self.assignments: list[set[int]] = []

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            await asyncio.sleep(self.revoke_s)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assignments.append({tp.partition for tp in assigned})


async def _consume(consumer: Any) -> None:
    while True:  # a member polls; the records themselves do not matter here
        await consumer.getmany(timeout_ms=200)


async def _until(condition: Any, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the consumers' background tasks move it
            await asyncio.sleep(0.1)


async def test_a_revoke_slower_than_the_session_timeout_keeps_the_member(
    kafka: Any, tmp_path: Path
) -> None:
    cluster = harness.Cluster(kafka.bootstrap, tmp_path)
    await cluster.create_topics()
    config = WorkerConfig(
        bootstrap_servers=[kafka.bootstrap], topic=cluster.topics.events,
        group_id=cluster.topics.group, chains_topic=cluster.topics.chains,
        state_topic=cluster.topics.state, session_timeout_s=SESSION_S,
    )  # fmt: skip
    slow, joiner = Recorder(revoke_s=SESSION_S + 4), Recorder()
    first = Member(config, lambda _: None).new_consumer()
    second = Member(config, lambda _: None).new_consumer()
    tasks: list[asyncio.Task[None]] = []
    try:
        first.subscribe([config.topic], listener=slow)
        await first.start()
        tasks.append(asyncio.create_task(_consume(first)))
        await _until(lambda: slow.assignments == [set(range(harness.PARTITIONS))], 60)

        second.subscribe([config.topic], listener=joiner)
        await second.start()
        tasks.append(asyncio.create_task(_consume(second)))
        await _until(lambda: bool(joiner.assignments) and len(slow.assignments) > 1, 60)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(first.stop(), second.stop(), return_exceptions=True)
    # The joiner's first generation already shares with the slow member: it was never
    # given all six while the slow one was removed.
    assert len(joiner.assignments[0]) == harness.PARTITIONS // 2, joiner.assignments
    assert slow.assignments[1] | joiner.assignments[0] == set(range(harness.PARTITIONS))
