"""Relay over Kafka: event batches on a topic keyed by namespace, and progress markers.

A batch from the queue is split by :func:`detector.relay.route.partition_keys` (an
event reaching into another namespace goes under both keys); each key's events become
one ``events/v1`` message (headers ``schema`` and ``relay``), all sent with
``acks=all`` and awaited together. Workers (``detector worker``, one consumer group)
own one partition each at a time, and every chain's evidence shares one key, so a
partition alone confirms its chains (docs/scale-out.md).

:meth:`KafkaForwarder.mark` writes a ``progress/v1`` marker to *every* partition: this
relay has delivered its events up to that event time. A worker's watermark is the
minimum over the relays it has heard from (``relay`` header = one input of the
engine), so it moves only with data in the partition and a replay after failover
makes the same decisions as the first run. Delivery is at-least-once: a batch that
fails part-way is resent whole; chain ids are a function of the evidence, so a
duplicate event cannot produce a second, different chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from correlation.event import Event
from detector.relay import wire
from detector.relay.config import RelayKafkaConfig
from detector.relay.forward import BatchTooLarge
from detector.relay.route import partition_keys
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.kafka import LazyProducer, producer_options, unavailable

_EVENTS: Final = ("schema", wire.SCHEMA.encode())
_PROGRESS: Final = ("schema", wire.PROGRESS_SCHEMA.encode())
# key, value, partition (None: by key), headers
_Message = tuple[bytes | None, bytes, int | None, list[tuple[str, bytes]]]


def by_key(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by every partition key they go under, each group in arrival order."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        for key in partition_keys(event):
            groups.setdefault(key, []).append(event)
    return groups


class KafkaForwarder:
    """Produces one message per partition key of each batch, and progress markers."""

    name = "kafka"

    def __init__(self, config: RelayKafkaConfig, max_batch_bytes: int) -> None:
        self._config, self._max_bytes = config, max_batch_bytes
        options = producer_options(config)  # resolves secrets now: fail at start
        options["max_request_size"] = max(max_batch_bytes, 1 << 20)
        self._producer = LazyProducer(options, config.timeout_s)
        self.relay_id = config.name
        self._relay = ("relay", self.relay_id.encode())

    async def send(self, events: Sequence[Event]) -> None:
        messages = [(key.encode(), wire.encode(group)) for key, group in by_key(events).items()]
        if any(len(value) > self._max_bytes for _, value in messages):
            raise BatchTooLarge(f"a message is above max_batch_bytes {self._max_bytes}")
        headers = [_EVENTS, self._relay]
        await self._produce(lambda _: [(key, value, None, headers) for key, value in messages])

    async def mark(self, time_ns: int) -> None:
        """A progress marker for ``time_ns`` on every partition of the topic."""
        value = wire.encode_progress(self.relay_id, time_ns)
        headers = [_PROGRESS, self._relay]
        await self._produce(lambda partitions: [(None, value, p, headers) for p in partitions])

    async def _produce(self, messages: Callable[[list[int]], list[_Message]]) -> None:
        """Send ``messages(partitions of the topic)`` and wait for every acknowledgement;
        failures map onto the delivery error tree."""
        topic = self._config.topic
        try:
            producer = await self._producer.get()
            async with asyncio.timeout(self._config.timeout_s):
                partitions = sorted(await producer.partitions_for(topic))
                pending = [
                    await producer.send(topic, value, key=key, partition=part, headers=headers)
                    for key, value, part, headers in messages(partitions)
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
