"""One member of the workers' consumer group: partitions come and go, each with its state.

::

    consumer (group <group_id>, topic <topic>, manual commits, read_committed)
      on assigned p ─► Partition(p).open(): fence, committed offset, snapshot ─► seek
      on revoked p  ─► under p's lock: snapshot + offsets in one last transaction, close
      getmany ──────► per partition, under its lock: Partition.handle(records)

The lock per partition is shared by the loop and the rebalance callbacks: a revoke
must not start a transaction while the loop's is open (aiokafka fails that with
``IN_TRANSACTION -> IN_TRANSACTION``). A transaction that fails — fenced by a newer
owner (this member was a zombie), or the broker went away — is counted as an abort;
a fenced partition is dropped (its new owner has it), any other is rebuilt from its
snapshot and committed offset, as on assignment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced

from correlation.engine import Engine
from detector.logging import get_logger
from detector.sinks.kafka import connection_options, stop_quietly
from detector.sources.backoff import Backoff
from detector.worker.config import WorkerConfig
from detector.worker.partition import Partition

log = get_logger("detector.worker")
# A partition's transaction failed (it aborts; the partition is rebuilt). IllegalOperation
# is not a KafkaError: aiokafka raises it for a send inside a transaction that an earlier
# failure (the broker restarting) has already put in an abortable state, and it ended the
# whole worker (exit 1) in the broker-restart test.
FAILED_TRANSACTION = (KafkaError, IllegalOperation, OSError, TimeoutError)


class Member(ConsumerRebalanceListener):  # type: ignore[misc]
    """Consumes the events topic as one member; owns a :class:`Partition` per assignment."""

    def __init__(self, config: WorkerConfig, make_engine: Callable[[bytes | None], Engine]):
        self.config = config
        self._connection = connection_options(config)  # secrets resolved now: fail at start
        self._make_engine = make_engine
        self.partitions: dict[TopicPartition, Partition] = {}
        self.aborts = 0
        self.stale_fetches = 0  # records that did not continue a partition's position
        self._consumer: AIOKafkaConsumer | None = None
        self.running = False  # the consume loop is up (``/healthz``)

    def new_consumer(self) -> AIOKafkaConsumer:
        """The group consumer with this member's settings (not yet subscribed).

        The rebalance timeout — how long the broker waits for a member to rejoin — is the
        max poll interval, as in Java's client, not aiokafka's default of the session
        timeout: a member rejoins only once its revoke has committed every partition it
        owned (one transaction with a snapshot each), and on a loaded machine that took
        longer than a 6 s session; the broker then removed the live member and the new
        owners fenced it (every one of its transactions aborted). A member that dies
        meanwhile is still noticed after the session timeout.
        """
        extra: dict[str, Any] = {}
        if self.config.instance_id:
            extra["group_instance_id"] = self.config.instance_id
        session_ms = int(self.config.session_timeout_s * 1000)
        poll_ms = max(60_000, session_ms * 3)
        return AIOKafkaConsumer(
            **self._connection,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(1000, session_ms // 5),
            max_poll_interval_ms=poll_ms,
            rebalance_timeout_ms=poll_ms,
            **extra,
        )

    async def run(self) -> None:
        """Consume until cancelled; a lost connection starts a fresh consumer."""
        backoff = Backoff(0.5, 10.0)
        while True:
            consumer = self._consumer = self.new_consumer()
            try:
                consumer.subscribe([self.config.topic], listener=self)
                await consumer.start()
                backoff.reset()
                self.running = True
                await self._loop(consumer)
            except KafkaError as exc:
                log.warning("worker_consumer_restart", error=type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
            finally:
                self.running = False
                await self._close_all()
                self._consumer = None
                await stop_quietly(consumer, timeout_s=10)  # leaving anyway

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=self.config.max_records)
            for tp, records in batch.items():
                part = self.partitions.get(tp)
                if part is None:
                    continue  # revoked or fenced meanwhile
                async with part.lock:
                    if self.partitions.get(tp) is part:
                        await self._handle(consumer, part, records)

    async def _handle(
        self, consumer: AIOKafkaConsumer, part: Partition, records: list[Any]
    ) -> None:
        try:
            if not await part.handle(records, self._bad):
                self.stale_fetches += 1
                consumer.seek(part.tp, part.position)
        except ProducerFenced:
            self._aborted(part, "fenced")
            self.partitions.pop(part.tp, None)
            await part.close()
        except FAILED_TRANSACTION as exc:
            self._aborted(part, type(exc).__name__)
            await self._rebuild(consumer, part)

    def _aborted(self, part: Partition, reason: str) -> None:
        self.aborts += 1
        part.stats.aborts += 1
        log.warning("worker_transaction_aborted", partition=part.tp.partition, reason=reason)

    async def _rebuild(self, consumer: AIOKafkaConsumer, part: Partition) -> None:
        """Back to the last committed state: the engine ran ahead of an aborted transaction."""
        backoff = Backoff(0.2, 5.0)
        while self.partitions.get(part.tp) is part:
            try:
                await self._open(consumer, part)
                return
            except ProducerFenced:
                self.partitions.pop(part.tp, None)
                await part.close()
                return
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("worker_partition_reopen", partition=part.tp.partition,
                            error=type(exc).__name__)  # fmt: skip
                await asyncio.sleep(backoff.next_delay())

    async def _open(self, consumer: AIOKafkaConsumer, part: Partition) -> None:
        tp = part.tp
        start = (await consumer.beginning_offsets([tp]))[tp]

        async def committed() -> int | None:
            value = await consumer.committed(tp)
            return None if value is None else int(value)

        seek = await part.open(committed, start)
        consumer.seek(tp, seek)
        log.info("worker_partition_restored", partition=tp.partition, seek=seek,
                 committed=part.committed, replay=part.stats.replayed,
                 restore_s=round(part.stats.restore_s, 3))  # fmt: skip

    # ------------------------------------------------------------ rebalance callbacks
    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            part = self.partitions.get(tp)
            if part is None:
                continue
            async with part.lock:
                self.partitions.pop(tp, None)
                try:
                    await part.checkpoint()
                except FAILED_TRANSACTION as exc:
                    self._aborted(part, type(exc).__name__)  # the next owner replays more
                await part.close()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in sorted(assigned):
            stale = self.partitions.pop(tp, None)
            if stale is not None:  # kept across a rejoin (this member was a zombie): refence
                async with stale.lock:
                    await stale.close()
            part = Partition(tp, self.config, self._connection, self._make_engine)
            async with part.lock:
                self.partitions[tp] = part
                await self._rebuild(consumer, part)

    async def _close_all(self) -> None:
        for tp in list(self.partitions):
            part = self.partitions.pop(tp)
            await part.close()

    async def stop(self) -> None:
        """Graceful: snapshot and commit every owned partition (SIGTERM)."""
        await self.on_partitions_revoked(list(self.partitions))

    def _bad(self, record: Any, exc: Exception) -> None:
        reason = getattr(exc, "reason", "bad_message")
        log.warning("worker_bad_message", topic=record.topic, partition=record.partition,
                    offset=record.offset, reason=reason, detail=str(exc))  # fmt: skip
