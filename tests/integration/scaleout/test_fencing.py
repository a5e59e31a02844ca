"""Fencing on the real broker: a newer owner of a partition makes the older one's
transaction fail, and what the older one decided but did not commit is published once,
by the newer one.

Two :class:`Partition` objects for the same partition stand for a zombie and its
successor, driven step by step so the interleaving is the one that matters: the zombie
has fed records and is about to commit when the successor starts.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ProducerFenced

from correlation.engine import Engine
from correlation.rules import builtin_rules_paths, load_rules
from detector.worker.config import WorkerConfig
from detector.worker.partition import Partition, feed
from tests.integration.scaleout import harness


async def _records(
    bootstrap: str, tp: TopicPartition, group: str
) -> tuple[list[Any], AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    await consumer.start()
    consumer.assign([tp])
    records: list[Any] = []
    end = (await consumer.end_offsets([tp]))[tp]
    while len(records) < end:
        records.extend((await consumer.getmany(tp, timeout_ms=1000)).get(tp, []))
    return records, consumer


async def test_fenced_zombie_cannot_commit_and_the_successor_publishes_once(
    kafka: Any, tmp_path: Path
) -> None:
    cluster = harness.Cluster(kafka.bootstrap, tmp_path)
    await cluster.create_topics()
    events = harness.stream(tmp_path, 6000, 12)
    await harness.load(kafka.bootstrap, cluster.topics.events, events, rate=1e9)
    rules = load_rules(builtin_rules_paths())
    config = WorkerConfig(bootstrap_servers=[kafka.bootstrap], topic=cluster.topics.events,
                          group_id=cluster.topics.group, chains_topic=cluster.topics.chains,
                          state_topic=cluster.topics.state)  # fmt: skip
    make = lambda data: Engine(rules) if data is None else Engine.restore(rules, None, data)  # noqa: E731

    tp = TopicPartition(cluster.topics.events, 3)
    records, consumer = await _records(kafka.bootstrap, tp, cluster.topics.group)
    try:

        async def committed() -> int | None:
            return await consumer.committed(tp)

        zombie = Partition(tp, config, {"bootstrap_servers": kafka.bootstrap}, make)
        assert await zombie.open(committed, 0) == 0
        half = len(records) // 2
        await zombie.handle(records[:half], lambda r, e: None)  # committed: chains published

        successor = Partition(tp, config, {"bootstrap_servers": kafka.bootstrap}, make)
        seek = await successor.open(committed, 0)  # fences the zombie
        assert 0 < seek <= half == successor.committed
        with pytest.raises(ProducerFenced):
            await zombie.handle(records[half:], lambda r, e: None)
        await successor.handle(records[seek:], lambda r, e: None)
        await zombie.close()
        await successor.close()
    finally:
        await consumer.stop()

    expected = [c.id for c in _chains_of(rules, records)]
    assert expected  # partition 3 holds chains of this stream
    found = await harness.committed_chains(
        kafka.bootstrap, cluster.topics.chains, set(expected), 20
    )
    assert sorted(found) == sorted(expected)
    # aiokafka leaves the fenced producer's futures and clients to the garbage collector;
    # collect them now, not during a later allocation (CPython 3.11.7 raises SystemError
    # if their finalizers run inside ast.parse, as pytest's import hook does)
    gc.collect()


def _chains_of(rules: list[Any], records: list[Any]) -> list[Any]:
    engine = Engine(rules)
    return [c for r in records for c in feed(engine, r)]
