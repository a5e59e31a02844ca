"""Property: a partition cut anywhere (snapshot, restore, replay of the tail with output
suppressed up to a later committed point) publishes exactly the uninterrupted run's ids.

The records are what the relays write (tests/integration/scaleout/harness.py), fed
through the worker's own :func:`detector.worker.partition.feed`; only the broker is
left out — the broker half of the same cycle runs in tests/integration/scaleout/.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from correlation.engine import Engine, EngineConfig
from correlation.rules import builtin_rules_paths, load_rules
from correlation.rules.model import ChainRule
from correlation.watermarks import WatermarkConfig
from detector.relay import wire
from detector.worker.partition import feed
from tests.integration.scaleout import harness

PARTITIONS = harness.PARTITIONS


def _records(tmp: Path) -> list[list[Any]]:
    """Per partition, the records in offset order (events by key, markers to all)."""
    events = harness.stream(tmp, 6000, 12)
    every = list(range(PARTITIONS))
    partitioner = DefaultPartitioner()
    out: list[list[Any]] = [[] for _ in every]
    newest: dict[str, int] = {}

    def add(p: int, value: bytes, schema: str, relay: str, at_ns: int = 0) -> None:
        headers = [("schema", schema.encode()), ("relay", relay.encode())]
        # the Kafka timestamp (ms): a second after the newest event written so far
        timestamp = (at_ns or max(newest.values(), default=0)) // 1_000_000 + 1000
        record = SimpleNamespace(
            value=value, headers=headers, offset=len(out[p]), timestamp=timestamp
        )
        out[p].append(record)

    for n, (relay, key, group) in enumerate(harness.messages(events)):
        add(int(partitioner(key.encode(), every, every)), wire.encode(group), wire.SCHEMA, relay)
        newest[relay] = max(newest.get(relay, 0), max(e.time_ns for e in group))
        if n % 50 == 0:
            for name, time_ns in newest.items():
                for p in every:
                    add(p, wire.encode_progress(name, time_ns), wire.PROGRESS_SCHEMA, name)
    for name in newest:
        for p in every:
            end = events[-1].time_ns + harness.HOUR_NS
            add(p, wire.encode_progress(name, end), wire.PROGRESS_SCHEMA, name, at_ns=end)
    return out


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[list[Any]]:
    return _records(tmp_path_factory.mktemp("stream"))


@pytest.fixture(scope="module")
def rules() -> list[ChainRule]:
    return load_rules(builtin_rules_paths())


# as `detector worker` configures it (worker.relay_idle_s): markers come often enough
CONFIG = EngineConfig(watermarks=WatermarkConfig(idle_timeout_ns=120 * 1_000_000_000))


def _uninterrupted(rules: list[ChainRule], records: list[Any]) -> list[str]:
    engine = Engine(rules, CONFIG)
    return [c.id for r in records for c in feed(engine, r)]


def _cut(rules: list[ChainRule], records: list[Any], snap_at: int, commit_at: int) -> list[str]:
    """Run to ``commit_at`` (published), with a snapshot at ``snap_at``; the new owner
    restores it, replays ``snap_at..commit_at`` silently and publishes the rest."""
    engine = Engine(rules, CONFIG)
    published: list[str] = []
    snapshot = b""
    for record in records[:commit_at]:
        if record.offset == snap_at:
            snapshot = engine.snapshot()
        published += [c.id for c in feed(engine, record)]
    if snap_at == commit_at:
        snapshot = engine.snapshot()
    successor = Engine.restore(rules, CONFIG, snapshot) if snap_at else Engine(rules, CONFIG)
    for record in records[snap_at:]:
        out = [c.id for c in feed(successor, record)]
        if record.offset >= commit_at:
            published += out
    return published


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cuts=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=PARTITIONS, max_size=PARTITIONS
    )
)
def test_snapshot_restore_replay_equals_the_uninterrupted_run(
    records: list[list[Any]], rules: list[ChainRule], cuts: list[tuple[float, float]]
) -> None:
    for partition, (a, b) in zip(records, cuts, strict=True):
        snap_at, commit_at = sorted((int(a * len(partition)), int(b * len(partition))))
        assert _cut(rules, partition, snap_at, commit_at) == _uninterrupted(rules, partition)


def test_the_stream_has_chains_in_several_partitions(
    records: list[list[Any]], rules: list[ChainRule]
) -> None:
    found = [_uninterrupted(rules, partition) for partition in records]
    assert sum(len(ids) for ids in found) == 12
    assert sum(1 for ids in found if ids) >= 3
