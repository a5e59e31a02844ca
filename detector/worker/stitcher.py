"""The stitcher: incidents across partitions, then the outbox and the sinks.

Workers publish chains to the single-partition ``chains_topic``; each carries the
incident its partition assigned, but an incident (P → Q → R, joined by shared pods and
service accounts) may span partitions. One stitcher — a consumer group over that one
partition, so a second instance is a hot standby that takes over on failure — reads
the chains read_committed, joins them with :class:`correlation.incidents.Incidents`
and submits each record, incident and path rewritten, to the existing
:class:`~detector.delivery.loops.Delivery` (outbox, then every sink)::

    chains_topic ─► Incidents.join ─► Delivery.submit (durable, deduplicated by chain id)
                                         └► consumer.commit(offset + 1)

On assignment the incident state is rebuilt by reading the topic from its start up to
the committed offset with output suppressed (chains are few; keep the topic's
retention a little above ``engine.incident_window``). A crash between submit and
commit re-reads a record: the outbox ignores a chain id it already holds, so sinks get
each chain once per outbox, webhook and Slack at-least-once with the chain id as the
idempotency key. Incident ids follow the order chains reach the topic, which differs
from run to run across partitions; chain ids do not.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from correlation.incidents import Incidents
from detector.logging import get_logger
from detector.parse.timestamps import rfc3339_ns
from detector.sinks.kafka import connection_options, stop_quietly
from detector.sources.backoff import Backoff
from detector.worker.config import WorkerConfig

log = get_logger("detector.stitcher")


class Submit(Protocol):
    async def submit(self, record: dict[str, Any]) -> None: ...


def restitch(incidents: Incidents, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the incident and path of the cross-partition incident it joins."""
    entities = {k: tuple(v) for k, v in record.get("entities", {}).items()}
    pods = set(entities.get("pods", ()))
    ordered = [p for p in record.get("path", []) if p in pods]
    ordered += sorted(pods - set(ordered))
    times = [rfc3339_ns(step["time"]) for step in record["steps"]]
    incident = incidents.join(record["id"], entities, times, ordered)
    incidents.expire(max(times))
    return {**record, "incident": incident.id, "path": list(incident.path)}


class Stitcher(ConsumerRebalanceListener):  # type: ignore[misc]
    """Reads the raw chains, stitches incidents, hands records to ``output``."""

    def __init__(self, config: WorkerConfig, output: Submit, window_ns: int, max_entities: int):
        self.config = config
        self._output = output
        self._connection = connection_options(config)  # secrets resolved now: fail at start
        self._window, self._max = window_ns, max_entities
        self._tp = TopicPartition(config.chains_topic, 0)
        self.incidents = Incidents(window_ns, max_entities)
        self.replay_until = 0  # records below were submitted by an earlier owner
        self.submitted = 0
        self.bad = 0
        self._consumer: AIOKafkaConsumer | None = None
        self.owner = False

    async def run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            consumer = self._consumer = AIOKafkaConsumer(
                **self._connection,
                group_id=f"{self.config.group_id}.stitcher",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                session_timeout_ms=int(self.config.session_timeout_s * 1000),
                heartbeat_interval_ms=max(1000, int(self.config.session_timeout_s * 200)),
            )
            try:
                consumer.subscribe([self.config.chains_topic], listener=self)
                await consumer.start()
                backoff.reset()
                while True:
                    batch = await consumer.getmany(self._tp, timeout_ms=500, max_records=200)
                    for record in batch.get(self._tp, []):
                        await self._one(consumer, record)
            except KafkaError as exc:
                log.warning("stitcher_consumer_restart", error=type(exc).__name__)
                await asyncio.sleep(backoff.next_delay())
            finally:
                self.owner = False
                await stop_quietly(consumer, timeout_s=10)  # leaving anyway

    async def _one(self, consumer: AIOKafkaConsumer, message: Any) -> None:
        try:
            record = restitch(self.incidents, orjson.loads(message.value))
        except (ValueError, KeyError, TypeError) as exc:
            self.bad += 1
            log.warning("stitcher_bad_record", offset=message.offset, error=type(exc).__name__)
            return
        if message.offset >= self.replay_until:
            await self._output.submit(record)  # durable before the offset moves
            self.submitted += 1
            await consumer.commit({self._tp: message.offset + 1})

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self._consumer
        others = sorted(tp.partition for tp in assigned if tp != self._tp)
        if others:
            log.error("stitcher_topic_has_partitions", ignored=others, topic=self._tp.topic,
                      hint="chains_topic must have exactly one partition")  # fmt: skip
        if consumer is None or self._tp not in set(assigned):
            return
        committed = await consumer.committed(self._tp)
        self.incidents = Incidents(self._window, self._max)
        self.replay_until = committed or 0
        consumer.seek(self._tp, (await consumer.beginning_offsets([self._tp]))[self._tp])
        self.owner = True
        log.info("stitcher_assigned", replay=self.replay_until)
