"""The relay task: drain the bounded queue in batches and forward them, never losing one.

::

    queue ─► collect (up to max_batch_events, or linger_s after the first event)
          ─► send ──ok──────────────► queue.done() × n     (the queue slot frees only now)
               ├─ transient ─► wait (Retry-After, else jittered backoff) ─► send again
               ├─ too large ─► split in halves, send each     (a single event: dropped)
               └─ permanent ─► drop the batch, counted `relay_rejected`

While a batch is being retried the queue keeps filling; once full, the HTTP receivers
answer 429 and tailers/gRPC wait in ``emit`` — backpressure reaches the senders instead
of memory growing. Events leave the queue's accounting only when delivered, so the
supervisor's shutdown drain waits for in-flight batches too; whatever is still unsent
when the grace period ends is counted (`relay_shutdown`), never silently lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from correlation.event import Event
from detector.logging import get_logger
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay.config import RelayConfig
from detector.relay.forward import BatchTooLarge, Forwarder, HttpForwarder
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sources.backoff import Backoff

log = get_logger("detector.relay")


def _kafka(config: RelayConfig) -> Forwarder:
    from detector.relay.kafka import KafkaForwarder  # aiokafka only when used

    assert config.kafka is not None  # noqa: S101 - RelayConfig.transport said "kafka"
    return KafkaForwarder(config.kafka, config.max_batch_bytes)


FORWARDERS: Final[dict[str, Callable[[RelayConfig], Forwarder]]] = {
    "http": HttpForwarder,
    "kafka": _kafka,
}


class Relay:
    """Takes the correlator's place in the supervisor when ``mode: relay``."""

    def __init__(
        self, queue: EventQueue, forwarder: Forwarder, config: RelayConfig, metrics: Metrics
    ):
        self._queue, self._forwarder, self._config = queue, forwarder, config
        self._metrics = metrics
        self.running = False

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                batch = await self._collect()
                try:
                    await self._deliver(batch)
                finally:
                    for _ in batch:
                        self._queue.done()
        finally:
            self.running = False
            await self._forwarder.close()

    async def tick(self, period_s: float) -> None:
        """Nothing in a relay is time-driven apart from the linger inside :meth:`run`."""
        await asyncio.Event().wait()

    async def flush(self) -> None:
        """Nothing is held outside the queue once :meth:`run` has stopped."""

    async def _collect(self) -> list[Event]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.linger_s
        while len(batch) < self._config.max_batch_events:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _deliver(self, batch: list[Event]) -> None:
        parts = [batch]
        sent = 0
        try:
            while parts:
                part = parts.pop()
                sent += await self._send_split(part, parts)
        except asyncio.CancelledError:
            left = len(batch) - sent
            log.error("relay_batch_unsent", events=left, transport=self._forwarder.name)
            self._metrics.drops.labels(reason="relay_shutdown").inc(left)
            raise

    async def _send_split(self, part: list[Event], parts: list[list[Event]]) -> int:
        """Send ``part``; on BatchTooLarge push its halves onto ``parts``. Returns events done."""
        try:
            await self._send(part)
        except BatchTooLarge as exc:
            if len(part) == 1:
                self._dropped(part, "relay_too_large", exc)
                return 1
            middle = len(part) // 2
            parts.extend([part[middle:], part[:middle]])  # popped oldest-first
            return 0
        return len(part)

    async def _send(self, events: list[Event]) -> None:
        """Retry transient failures until delivered; a permanent refusal drops the batch."""
        backoff = Backoff(self._config.backoff_initial_s, self._config.backoff_max_s)
        name = self._forwarder.name
        while True:
            try:
                await self._forwarder.send(events)
            except BatchTooLarge:
                raise
            except PermanentDeliveryError as exc:
                self._dropped(events, "relay_rejected", exc)
                return
            except TransientDeliveryError as exc:
                delay = self._delay(backoff, exc.retry_after)
                self._metrics.relay_retries.labels(transport=name).inc()
                log.warning("relay_retry", transport=name, error=str(exc), wait_s=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            self._metrics.relay_sent.labels(transport=name).inc(len(events))
            return

    def _delay(self, backoff: Backoff, retry_after: float | None) -> float:
        jittered = backoff.next_delay()
        if retry_after is None:
            return jittered
        return min(max(retry_after, jittered), self._config.backoff_max_s)

    def _dropped(self, events: list[Event], reason: str, exc: Exception) -> None:
        log.error("relay_dropped", reason=reason, events=len(events), error=str(exc))
        self._metrics.drops.labels(reason=reason).inc(len(events))


class NoOutput:
    """The supervisor's output slot in relay mode: a relay emits no chains."""

    async def submit(self, record: dict[str, Any]) -> None:
        raise RuntimeError("a relay does not correlate, so it has no chains to submit")

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def close(self, grace_s: float) -> None:
        return None


def build_relay(config: RelayConfig, queue: EventQueue, metrics: Metrics) -> Relay:
    """The relay for the configured transport (config validation guarantees there is one)."""
    return Relay(queue, FORWARDERS[config.transport](config), config, metrics)
