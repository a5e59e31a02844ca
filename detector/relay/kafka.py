"""Relay over Kafka: event batches on a topic keyed by the correlation identity.

A batch from the queue is split by :func:`identity_key`; each key's events become one
``events/v1`` message (header ``schema``), all sent with ``acks=all`` and awaited
together. Correlation workers consume the topic as one consumer group
(:mod:`detector.sources.kafka_events`): a key always lands on one partition, so one
worker sees every event of that key, in order.

The key is the actor's *home namespace* — the pod's namespace for a Falco alert, the
service account's namespace for an audit event — because that is what the join of most
chains holds constant. What stays within one key and what does not:

* within one key: ``recon-token-pivot``, ``stolen-token-replay`` (pod P and P's service
  account share P's namespace), ``imds-credential-theft`` and ``internal-fanout`` (one pod);
* spanning keys: ``workload-pivot`` (P's identity in namespace A creates a workload in B;
  the Falco step happens in B) and ``exec-pivot`` (exec into Q in namespace B, and the
  P → Q path back to A) — they are confirmed only when A = B, or with one partition;
* humans and other non-service-account users have no home namespace: their audit events
  are keyed by the target namespace; Falco alerts without pod fields (container id only)
  are keyed by node, so the container → pod resolution learned from that node's other
  alerts is not guaranteed to be on the same worker.

So partitioning trades the cross-namespace chains for parallelism; docs/architecture.md
says when to keep one partition (and a single correlation worker with a hot standby).
Delivery is at-least-once: a batch that fails part-way is resent whole; chain ids are a
function of the evidence, so a duplicate event cannot produce a second, different chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from correlation.event import K8S_AUDIT, Event
from detector.relay import wire
from detector.relay.config import RelayKafkaConfig
from detector.relay.forward import BatchTooLarge
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.kafka import LazyProducer, producer_options, unavailable

_HEADERS: Final = [("schema", wire.SCHEMA.encode())]


def identity_key(event: Event) -> str:
    """The partition key: the actor's home namespace, else a documented fallback."""
    if event.actor.namespace:
        return event.actor.namespace
    if event.source == K8S_AUDIT and event.target.namespace:
        return event.target.namespace
    return f"node:{event.actor.node}" if event.actor.node else "cluster"


def by_key(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by :func:`identity_key`, each group in arrival order."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(identity_key(event), []).append(event)
    return groups


class KafkaForwarder:
    """Produces one message per identity key of each batch."""

    name = "kafka"

    def __init__(self, config: RelayKafkaConfig, max_batch_bytes: int) -> None:
        self._config, self._max_bytes = config, max_batch_bytes
        options = producer_options(config)  # resolves secrets now: fail at start
        options["max_request_size"] = max(max_batch_bytes, 1 << 20)
        self._producer = LazyProducer(options, config.timeout_s)

    async def send(self, events: Sequence[Event]) -> None:
        messages = [(key.encode(), wire.encode(group)) for key, group in by_key(events).items()]
        if any(len(value) > self._max_bytes for _, value in messages):
            raise BatchTooLarge(f"a message is above max_batch_bytes {self._max_bytes}")
        try:
            producer = await self._producer.get()
            async with asyncio.timeout(self._config.timeout_s):
                pending = [
                    await producer.send(self._config.topic, value, key=key, headers=_HEADERS)
                    for key, value in messages
                ]
                await asyncio.gather(*pending)
        except MessageSizeTooLargeError as exc:
            raise BatchTooLarge(f"kafka: {exc!r}") from None
        except KafkaError as exc:
            if not exc.retriable:
                raise PermanentDeliveryError(f"kafka refused the batch: {exc!r}") from None
            await self.close()
            raise TransientDeliveryError(unavailable(exc)) from None
        except (TimeoutError, OSError) as exc:
            await self.close()
            raise TransientDeliveryError(unavailable(exc)) from None

    async def close(self) -> None:
        """Drop the producer; the next send starts a fresh one (stale state after outages)."""
        await self._producer.discard()
