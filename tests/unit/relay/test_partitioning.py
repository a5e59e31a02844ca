"""Generated attack streams replayed through the relay's partitioner: every chain kept.

The bench generator plants chains of all six kinds (cross-namespace workload and exec
pivots, container-id-only metadata alerts) in realistic noise. One unpartitioned
engine is the oracle; the partitioned run sends each Falco alert through its node's
:class:`ContainerResolver`, groups the batch with the relay's own :func:`by_key`, maps
keys to partitions with Kafka's default partitioner (murmur2, what aiokafka and the
Java client use) and gives every partition its own engine. The old key (the actor's
home namespace) is replayed too, to show the streams really exercise the split.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from bench.generate import Params, generate
from correlation.engine import Engine
from correlation.event import FALCO, K8S_AUDIT, Event
from correlation.rules import builtin_rules_paths, load_rules
from correlation.rules.model import ChainRule
from detector.parse import parse_line
from detector.relay.kafka import by_key
from detector.relay.route import ContainerResolver

_PARTITIONER = DefaultPartitioner()


def _stream(tmp: Path, params: Params) -> list[Event]:
    generate(tmp, params)
    lines = (tmp / "stream.jsonl").read_bytes().splitlines()
    return [event for line in lines for event in parse_line(line)]


def _oracle(rules: list[ChainRule], events: Iterable[Event]) -> list[str]:
    engine = Engine(rules)
    ids = [chain.id for event in events for chain in engine.process(event)]
    return ids + [chain.id for chain in engine.flush()]


def _partition(key: str, count: int) -> int:
    every = list(range(count))
    return int(_PARTITIONER(key.encode(), every, every))


def _partitioned(
    rules: list[ChainRule], routed: Iterable[tuple[str, Event]], count: int
) -> list[str]:
    engines = [Engine(rules) for _ in range(count)]
    ids = [
        chain.id
        for key, event in routed
        for chain in engines[_partition(key, count)].process(event)
    ]
    return ids + [chain.id for engine in engines for chain in engine.flush()]


def _through_relays(events: list[Event]) -> Iterable[tuple[str, Event]]:
    """What the relays send: Falco alerts through their node's resolver, all by_key."""
    nodes: dict[str, ContainerResolver] = defaultdict(lambda: ContainerResolver(2.0, 1000, 10_000))
    for event in events:
        if event.source == FALCO:
            ready = nodes[event.actor.node].admit(event)
        else:
            ready = [event]
        for key, group in by_key(ready).items():
            yield from ((key, e) for e in group)
    for resolver in nodes.values():
        for key, group in by_key(resolver.drain()).items():
            yield from ((key, e) for e in group)


def _home_namespace(event: Event) -> str:
    """The key relays used before: the actor's namespace, else target, else node."""
    if event.actor.namespace:
        return event.actor.namespace
    if event.source == K8S_AUDIT and event.target.namespace:
        return event.target.namespace
    return f"node:{event.actor.node}"


CASES = [
    # events, pods, planted chains, partitions
    (20_000, 300, 60, 8),
    (30_000, 600, 120, 16),
]


@pytest.mark.parametrize(("events", "pods", "planted", "partitions"), CASES)
def test_partitioned_run_finds_every_chain_of_one_engine(
    tmp_path: Path, events: int, pods: int, planted: int, partitions: int
) -> None:
    params = Params(events=events, pods=pods, chains=planted, rate=25.0, gap_s=20.0)
    stream = _stream(tmp_path, params)
    rules = load_rules(builtin_rules_paths())
    oracle = _oracle(rules, stream)
    assert len(oracle) == len(set(oracle)) == planted

    routed = list(_through_relays(stream))
    assert len(stream) <= len(routed) < len(stream) * 1.01  # few events go under two keys
    found = _partitioned(rules, routed, partitions)
    assert sorted(found) == sorted(oracle)  # same ids, each once: no partition emits twice

    before = set(_partitioned(rules, ((_home_namespace(e), e) for e in stream), partitions))
    assert before < set(oracle)  # the old key loses the cross-namespace pivots
    assert len(before) <= planted * 3 // 4
