"""A partition's transaction failing with aiokafka's IllegalOperation is an abort, not a crash.

While the broker restarts, a send inside a partition's transaction can find it already in
an abortable state (an earlier send of the same transaction failed); aiokafka then raises
IllegalOperation, which is not a KafkaError, and it went up through the member's loop and
ended the worker (exit 1, seen once in ``test_broker_restart_mid_stream_…``). It is now a
failed transaction like the others: counted as an abort, the partition rebuilt from its
snapshot and committed offset, nothing lost or repeated.

Real broker, a real :class:`Member` running its consume loop; the failure itself is a
stand-in (partition 0's first transaction raises IllegalOperation before it sends), as a
broker restart cannot be made to land between two sends of one transaction on demand.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import IllegalOperation

from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector.worker import member as member_module
from detector.worker.config import WorkerConfig
from detector.worker.member import Member
from detector.worker.partition import Partition
from tests.integration.scaleout import harness


class FailsOnce(Partition):
    """Partition 0's first transaction fails as a broker restart can make it fail."""

    failed = False

    async def _commit(self, chains: list[Any]) -> None:
        if self.tp.partition == 0 and not FailsOnce.failed:
            FailsOnce.failed = True
            raise IllegalOperation("Can't send messages while not in transaction")
        await super()._commit(chains)


async def test_an_illegal_operation_in_a_transaction_aborts_and_rebuilds_the_partition(
    kafka: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_module, "Partition", FailsOnce)
    FailsOnce.failed = False
    events = harness.stream(tmp_path, 6000, 12)
    want, _ = harness.oracle(events)
    cluster = harness.Cluster(kafka.bootstrap, tmp_path)
    await cluster.create_topics()
    config = WorkerConfig(
        bootstrap_servers=[kafka.bootstrap], topic=cluster.topics.events,
        group_id=cluster.topics.group, chains_topic=cluster.topics.chains,
        state_topic=cluster.topics.state, session_timeout_s=6.0,
    )  # fmt: skip
    rules = load_rules(builtin_rules_paths())
    member = Member(
        config, lambda data: Engine(rules) if data is None else Engine.restore(rules, None, data)
    )
    running = asyncio.create_task(member.run())
    try:
        await harness.load(kafka.bootstrap, cluster.topics.events, events, rate=1e9)
        found = await harness.committed_chains(
            kafka.bootstrap, cluster.topics.chains, set(want), 60
        )
        behind = await harness.wait_caught_up(kafka.bootstrap, cluster.topics, 30)
        assert not running.done(), running.exception()  # the worker goes on
        await member.stop()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert FailsOnce.failed
    assert member.aborts == 1
    assert sorted(found) == sorted(want)  # nothing lost, nothing published twice
    assert behind == dict.fromkeys(range(harness.PARTITIONS), 0)
