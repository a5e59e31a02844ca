"""``sources.kafka_events``: correlation workers consume relayed events as a consumer group.

Relays (``relay.kafka``) publish ``events/v1`` batches keyed by the correlation identity;
every worker runs this source with the same ``group_id``, so Kafka assigns each partition
to one worker and moves it on failover. Offsets are committed manually, after every
event of a ``getmany`` round has been handed to ``emit`` — which waits while the engine's
queue is full, so backpressure simply slows the consumer (Kafka keeps the backlog).

Delivery into the engine is at-least-once from the last commit: a crash re-reads the
uncommitted tail (duplicates produce the same deterministic chain ids). Known gap: the
commit follows the *queue*, not the engine checkpoint (file tailers follow the
checkpoint, see :mod:`detector.delivery.checkpoint`). After ``kill -9`` the events committed but not
yet in a checkpoint — up to ``checkpoint.interval_s`` of traffic plus what sat in the
queue — are not re-read, and partial matches they opened are lost. The fix has the
same shape as the file tailer's: record ``(events emitted, {partition: offset + 1})``
per round, capture it with the snapshot via ``EventQueue.processed``, and
``consumer.commit(offsets)`` once the checkpoint is on disk (an async commit, so the
:class:`~detector.delivery.checkpoint.Follower` hook needs an awaitable variant; a rebalance in
between must drop the marks of revoked partitions). A partition that
moves to another worker arrives without the previous owner's partial matches; chains
open across the move may be missed. A message that does not decode is logged with its
coordinates (topic, partition, offset), counted and skipped — it never stops the group.

The connection and security keys are those every Kafka client here shares
(:class:`~detector.sinks.config.KafkaConnectionConfig`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, ClassVar

import msgspec
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from detector.logging import get_logger
from detector.metrics import Metrics
from detector.relay import wire
from detector.sinks.config import KafkaConnectionConfig
from detector.sinks.kafka import connection_options, stop_quietly
from detector.sources.backoff import Backoff
from detector.sources.base import Emit

log = get_logger("detector.kafka_events")
_PROGRESS_HEADER = ("schema", wire.PROGRESS_SCHEMA.encode())


def is_progress(message: Any) -> bool:
    """A relay's progress marker (header ``schema`` = ``progress/v1``), not an event batch."""
    return _PROGRESS_HEADER in (message.headers or ())


class KafkaEventsConfig(KafkaConnectionConfig):
    """Consume relayed events (``relay.kafka``) as one member of a consumer group."""

    role: ClassVar[str] = "sources.kafka_events"

    topic: Annotated[str, msgspec.Meta(description="topic the relays produce to")] = (
        "detector-events"
    )
    group_id: Annotated[str, msgspec.Meta(description="consumer group of the workers")] = (
        "detector-correlators"
    )
    client_id: Annotated[
        str, msgspec.Meta(description="client id the brokers log and apply quotas to")
    ] = "lateral-chain-detector-worker"
    max_records: Annotated[int, msgspec.Meta(description="messages per poll", ge=1)] = 100


def consumer_options(config: KafkaEventsConfig) -> dict[str, Any]:
    """aiokafka consumer keyword arguments: the shared connection/security, manual commits."""
    return {
        **connection_options(config),
        "group_id": config.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }


class KafkaEventsSource:
    """A :class:`~detector.sources.base.Source` reading ``events/v1`` batches from Kafka."""

    name = "kafka_events"

    def __init__(self, config: KafkaEventsConfig, metrics: Metrics) -> None:
        self._config, self._metrics = config, metrics
        self._options = consumer_options(config)  # resolves secrets now: fail at start
        self._ready = False

    def ready(self) -> bool:
        return self._ready

    async def run(self, emit: Emit) -> None:
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                await self._consume(emit, backoff)
            except (KafkaError, OSError, TimeoutError) as exc:
                self._metrics.reconnects.labels(source=self.name).inc()
                delay = backoff.next_delay()
                log.warning("kafka_events_reconnect", error=type(exc).__name__, wait_s=delay)
                await asyncio.sleep(delay)

    async def _consume(self, emit: Emit, backoff: Backoff) -> None:
        consumer = AIOKafkaConsumer(self._config.topic, **self._options)
        try:
            # inside the try: a start that fails or times out must still close its connections
            async with asyncio.timeout(self._config.timeout_s):  # never swallows a cancel
                await consumer.start()
            self._ready = True
            backoff.reset()
            while True:
                rounds = await consumer.getmany(
                    timeout_ms=500, max_records=self._config.max_records
                )
                for messages in rounds.values():
                    for message in messages:
                        await self._emit_message(message, emit)
                if rounds:
                    await consumer.commit()
        finally:
            self._ready = False
            await asyncio.shield(stop_quietly(consumer))  # uncommitted offsets are re-read

    async def _emit_message(self, message: Any, emit: Emit) -> None:
        if is_progress(message):
            return  # a relay's progress marker: for `detector worker`, no events in it
        try:
            events = wire.decode(message.value or b"")
        except wire.WireError as exc:
            self._metrics.parse_errors.labels(source=self.name, reason=exc.reason).inc()
            log.warning(
                "kafka_events_bad_message",
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                reason=exc.reason,
                detail=str(exc),
            )
            return
        for event in events:
            await emit(event)
