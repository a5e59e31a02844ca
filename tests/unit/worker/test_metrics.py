"""A worker's /metrics: one sample per owned partition, and exactly the declared families."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from correlation.engine import Engine
from detector.worker.config import WorkerConfig
from detector.worker.member import Member
from detector.worker.metrics import FAMILIES, registry_for, render
from detector.worker.partition import Partition


def _member(partitions: list[int]) -> Member:
    config = WorkerConfig(bootstrap_servers=["127.0.0.1:1"])
    member = Member(config, lambda data: Engine([]))
    for p in partitions:
        tp = TopicPartition(config.topic, p)
        part = Partition(tp, config, {}, lambda data: Engine([]))
        part.stats.highwater, part.position, part.stats.restore_s = 120, 100, 0.25
        member.partitions[tp] = part
    return member


def test_exported_families_are_the_declared_ones() -> None:
    text = render(registry_for(_member([2, 5]))).decode()
    families = list(text_string_to_metric_families(text))
    exported = {f.name: tuple(sorted({k for s in f.samples for k in s.labels})) for f in families}
    assert exported == FAMILIES


def test_one_sample_per_owned_partition() -> None:
    text = render(registry_for(_member([2, 5]))).decode()
    assert 'detector_worker_partition_lag{partition="2"} 20.0' in text
    assert 'detector_worker_partition_restore_seconds{partition="5"} 0.25' in text
    assert "detector_worker_partitions 2.0" in text
