"""One input partition's engine, transactional producer and replay bookkeeping.

::

    assign p ─► producer.start()         InitProducerId(<group>.<topic>.<p>): fences the
             │                           old owner, aborts its open transaction
             ├► committed offset c       (read only after fencing: it cannot move now)
             ├► newest snapshot (seq, s) state topic, read_committed; none: empty, s = start
             └► seek(p, s)
    records  ─► engine ─► offset < c: output suppressed (it was committed with c)
                       └► offset ≥ c: one transaction = chains + [snapshot] + offset

Every decision of the engine is a function of the records of the partition (events,
and the relays' progress markers for time), so the replay from *s* to *c* decides
exactly what the first run decided, and each chain is published once. A transaction
that fails (broker gone, fenced) leaves the engine ahead of what was committed, so the
partition is rebuilt by the same steps as an assignment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer, TopicPartition

from correlation.chain import Chain, to_record
from correlation.engine import Engine
from detector.relay import wire
from detector.sinks.kafka import stop_quietly
from detector.sources.kafka_events import is_progress
from detector.worker import state
from detector.worker.config import WorkerConfig

_ENC = msgspec.json.Encoder()

EngineFactory = Callable[[bytes | None], Engine]


class PartitionStats(msgspec.Struct):
    """What the metrics report per partition."""

    restore_s: float = 0.0
    replayed: int = 0
    aborts: int = 0
    bad_messages: int = 0
    state_bytes: int = 0
    chains: int = 0
    highwater: int = 0  # the broker's end of the partition, as of the last fetch


def feed(engine: Engine, record: Any) -> list[Chain]:
    """One record of the events topic into the engine: a batch of events, or progress.

    Each relay is one input of the partition's engine (the ``relay`` header), so the
    partition's watermark is the minimum over its relays' progress — the engine's own
    per-input watermark. The receiving clock is the record's Kafka timestamp: data, so
    a replay sees the same clock. With it the engine clamps stamps too far ahead, and
    at each marker a relay quiet for the idle timeout (a node gone) stops holding the
    partition back until it speaks again.
    Raises :class:`detector.relay.wire.WireError` for a record that is neither.
    """
    now_ns = int(record.timestamp) * 1_000_000 if record.timestamp else 0
    if is_progress(record):
        marker = wire.decode_progress(record.value or b"")
        out = engine.progress(f"relay:{marker.relay}", marker.time_ns, now_ns)
        if now_ns:
            out += engine.advance(now_ns, [state.name for state in engine.inputs()])
        return out
    relay = f"relay:{_header(record, 'relay')}"
    out = []
    for event in wire.decode(record.value or b""):
        out.extend(engine.process(event, relay, now_ns))
    return out


def _header(record: Any, name: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""


class Partition:
    """Owned by one worker at a time; every method runs under :attr:`lock`."""

    def __init__(
        self,
        tp: TopicPartition,
        config: WorkerConfig,
        connection: dict[str, Any],
        make_engine: EngineFactory,
    ) -> None:
        self.tp, self.config = tp, config
        self.lock = asyncio.Lock()
        self.stats = PartitionStats()
        self._connection = connection  # detector.sinks.kafka.connection_options
        self._make_engine = make_engine
        self._state_tp = TopicPartition(config.state_topic, tp.partition)
        self.engine = make_engine(None)
        self.producer: AIOKafkaProducer | None = None
        self.committed = 0  # records below this were published by an earlier owner
        self.position = 0  # the next offset the engine has not seen
        self._seq = 0
        self._snapshot_at = 0.0

    def gauge(self, name: str) -> float:
        """One per-partition gauge of :mod:`detector.worker.metrics`."""
        if name == "lag":
            return max(0, self.stats.highwater - self.position)
        if name == "watermark":
            return max(self.engine.watermark, 0) / 1e9
        if name == "partials":
            return self.engine.stats().partials
        return float(getattr(self.stats, name))

    @property
    def transactional_id(self) -> str:
        return f"{self.config.group_id}.{self.tp.topic}.{self.tp.partition}"

    async def open(self, committed: Callable[[], Any], start_offset: int) -> int:
        """Fence, read the committed offset and the snapshot; returns where to seek."""
        started = time.monotonic()
        await self.close()
        producer = AIOKafkaProducer(
            **self._connection,
            acks="all",
            enable_idempotence=True,
            transactional_id=self.transactional_id,
            request_timeout_ms=int(self.config.timeout_s * 1000),
        )
        await producer.start()
        self.producer = producer
        offset = await committed()
        found = await state.read(self._connection, self._state_tp)
        if found is None:
            self.engine, seek, self._seq = self._make_engine(None), start_offset, 0
        else:
            manifest, data = found
            self.engine, seek, self._seq = (
                self._make_engine(data),
                manifest.input_offset,
                manifest.seq,
            )
            self.stats.state_bytes = manifest.size
        self.committed = max(offset if offset is not None else start_offset, seek)
        self.position = seek
        self.stats.replayed = self.committed - seek
        self.stats.restore_s = time.monotonic() - started
        self._snapshot_at = 0.0  # the first transaction carries a snapshot
        return seek

    async def handle(self, records: list[Any], on_bad: Callable[[Any, Exception], None]) -> bool:
        """Feed ``records``; publish what is past the committed offset in one transaction.

        Returns False when the records do not continue at :attr:`position` (fetched for
        an older position around a rebalance): the caller seeks back and fetches again.
        """
        chains: list[Chain] = []
        contiguous = True
        for record in records:
            if record.offset < self.position:
                continue  # fetched before a seek back: already in the engine
            if record.offset > self.position:
                contiguous = False  # the events topic has no gaps (no transactions in it)
                break
            try:
                out = feed(self.engine, record)
            except wire.WireError as exc:
                self.stats.bad_messages += 1
                on_bad(record, exc)
                out = []
            if record.offset >= self.committed:
                chains.extend(out)
            self.position = record.offset + 1
        if self.position > self.committed:
            await self._commit(chains)
        return contiguous

    async def _commit(self, chains: list[Chain]) -> None:
        producer = self.producer
        if producer is None:
            raise RuntimeError(f"{self.tp} has no producer")
        sent: list[asyncio.Future[Any]] = []
        try:
            async with producer.transaction():
                for chain in chains:
                    key = chain.id.encode()
                    value = _ENC.encode(to_record(chain))
                    headers = [("chain_id", key)]
                    topic = self.config.chains_topic
                    sent.append(await producer.send(topic, value, key=key, headers=headers))
                if time.monotonic() - self._snapshot_at >= self.config.snapshot_interval_s:
                    await self._snapshot(producer)
                await producer.send_offsets_to_transaction(
                    {self.tp: self.position}, self.config.group_id
                )
        finally:
            # collected either way: a failed transaction fails its sends too
            await asyncio.gather(*sent, return_exceptions=True)
        self.committed = self.position
        self.stats.chains += len(chains)

    async def _snapshot(self, producer: AIOKafkaProducer) -> None:
        data = self.engine.snapshot()
        self._seq += 1
        await state.write(producer, self._state_tp, self._seq, data, self.position,
                          self.config.chunk_bytes)  # fmt: skip
        self.stats.state_bytes = len(data)
        self._snapshot_at = time.monotonic()

    async def checkpoint(self) -> None:
        """A snapshot now (on revoke), so the next owner replays little."""
        self._snapshot_at = 0.0
        await self._commit([])

    async def close(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await stop_quietly(producer)  # best effort: a fenced or dead producer
