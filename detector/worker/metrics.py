"""``/metrics`` of a worker: per partition it owns, read at scrape time.

========================================  =====  =========================================
name                                      kind   what
========================================  =====  =========================================
detector_worker_partitions                gauge  partitions this member owns
detector_worker_partition_lag             gauge  high watermark − next offset to process
detector_worker_partition_watermark_seconds gauge  the partition engine's event-time watermark
detector_worker_partition_state_bytes     gauge  size of its last snapshot
detector_worker_partition_restore_seconds gauge  fence + snapshot read of its last assignment
detector_worker_partition_replayed        gauge  records replayed silently at that assignment
detector_worker_partition_live_partials   gauge  buffered step events in its engine
detector_worker_transaction_aborts_total  counter  failed transactions (fenced, broker gone)
detector_worker_stale_fetches_total       counter  fetches discarded around a rebalance
========================================  =====  =========================================

Labels: ``partition``. A member's counters restart at 0 when it (re)starts; the aborts
of a partition that moved stay with the member that had them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from detector.worker.member import Member

_PER_PARTITION: Final = (
    ("partition_lag", "High watermark minus the next offset to process", "lag"),
    ("partition_watermark_seconds", "Event-time watermark of the partition engine", "watermark"),
    ("partition_state_bytes", "Size of the partition's last snapshot", "state_bytes"),
    ("partition_restore_seconds", "Fence and snapshot read at the last assignment", "restore_s"),
    ("partition_replayed", "Records replayed with output suppressed at assignment", "replayed"),
    ("partition_live_partials", "Buffered step events in the partition engine", "partials"),
)


# family name (counters without ``_total``) -> label names: what the collector exports,
# for the docs check (tests/unit/docs) as much as for readers
FAMILIES: Final = {
    "detector_worker_partitions": (),
    **{f"detector_worker_{suffix}": ("partition",) for suffix, _, _ in _PER_PARTITION},
    "detector_worker_transaction_aborts": (),
    "detector_worker_stale_fetches": (),
}


class WorkerCollector:
    """A prometheus_client collector over a :class:`Member`'s partitions."""

    def __init__(self, member: Member) -> None:
        self._member = member

    def collect(self) -> Iterator[Metric]:
        parts = sorted(self._member.partitions.values(), key=lambda p: p.tp.partition)
        owned = GaugeMetricFamily("detector_worker_partitions", "Partitions this member owns")
        owned.add_metric([], len(parts))
        yield owned
        for suffix, text, field in _PER_PARTITION:
            family = GaugeMetricFamily(f"detector_worker_{suffix}", text, labels=["partition"])
            for part in parts:
                family.add_metric([str(part.tp.partition)], part.gauge(field))
            yield family
        aborts = CounterMetricFamily(
            "detector_worker_transaction_aborts", "Failed transactions (fenced, broker gone)"
        )
        aborts.add_metric([], self._member.aborts)
        yield aborts
        stale = CounterMetricFamily(
            "detector_worker_stale_fetches", "Fetches discarded around a rebalance"
        )
        stale.add_metric([], self._member.stale_fetches)
        yield stale


def registry_for(member: Member) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(member))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
