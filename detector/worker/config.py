"""The ``worker:`` part of the configuration (``detector worker``).

The worker reads the same file as ``detector run``: ``engine.*`` (rules, lateness,
caps) applies to every partition's engine, and this section says where the events
come from and where chains, snapshots and offsets go. The Kafka connection and
security keys are the ones every Kafka client here shares
(:class:`detector.sinks.config.KafkaConnectionConfig`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from detector.sinks.config import KafkaConnectionConfig, doc


class WorkerConfig(KafkaConnectionConfig):
    """One member of the workers' consumer group (see docs/scale-out.md)."""

    role: ClassVar[str] = "worker"

    client_id: Annotated[str, doc("client id the brokers log and apply quotas to")] = (
        "lateral-chain-detector-worker"
    )
    topic: Annotated[str, doc("topic the relays produce to", min_length=1)] = "detector-events"
    group_id: Annotated[str, doc("consumer group of the workers", min_length=1)] = (
        "detector-workers"
    )
    chains_topic: Annotated[str, doc("single-partition topic of raw chains", min_length=1)] = (
        "detector-chains-raw"
    )
    state_topic: Annotated[
        str, doc("compacted topic of partition snapshots (as many partitions)", min_length=1)
    ] = "detector-state"
    snapshot_interval_s: Annotated[
        float, doc("a partition's snapshot at most this often", gt=0)
    ] = 10.0
    chunk_bytes: Annotated[int, doc("snapshot chunk size (one state message)", ge=1024)] = (
        512 * 1024
    )
    max_records: Annotated[int, doc("messages per poll", ge=1)] = 500
    session_timeout_s: Annotated[
        float, doc("a member silent this long loses its partitions", ge=6, le=1800)
    ] = 10.0
    relay_idle_s: Annotated[
        float, doc("a relay silent this long (Kafka record time) stops holding a partition", gt=0)
    ] = 120.0
    listen: Annotated[str, doc("HOST:PORT of /healthz and /metrics; empty = off")] = ""
    instance_id: Annotated[str, doc("static group membership id (a pod name); empty = dynamic")] = (
        ""
    )
