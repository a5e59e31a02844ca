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

Over Kafka two more things happen (see :mod:`.route` and :mod:`.kafka`):

* each collected event passes the node's :class:`~.route.ContainerResolver` first; a
  container-only alert may wait there up to ``resolve_hold_s`` (event time of this
  relay, or clock time once its input is quiet) for its pod. A held alert has left the
  queue's accounting; the few still held at shutdown are counted `relay_shutdown`;
* :meth:`Relay.tick` writes a progress marker every ``progress_interval_s``: the event
  time up to which everything was delivered (an alert still held holds it back).

With the intake log (:meth:`Relay.keep`), what the relay accepted survives ``kill -9``:
the HTTP receivers and the gRPC source log each batch before acknowledging it, the
relay's checkpoint file (:data:`RELAY_CHECKPOINT` in ``intake_log.path``, positions only:
a relay has no engine state) records how far the logged events are *settled*
(:mod:`.settled`), every
``checkpoint.interval_s`` and once more at shutdown, and a restart forwards the rest
again. Logged events still unsent or held at shutdown are kept for the restart, not
counted as dropped; a restart may forward a few events twice (the correlator's engine
drops a repeated event id), never none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from correlation.event import Claim, Event
from detector.delivery.checkpoint import Checkpointer
from detector.event_queue import Item
from detector.logging import get_logger
from detector.metrics import Metrics
from detector.pipeline import EventQueue
from detector.relay.config import RelayConfig
from detector.relay.forward import BatchTooLarge, Forwarder, HttpForwarder
from detector.relay.route import ContainerResolver
from detector.relay.settled import Settlement
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sources.backoff import Backoff

log = get_logger("detector.relay")
RELAY_CHECKPOINT: Final = "relay.ckpt"  # inside intake_log.path: the settled position


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
        self,
        queue: EventQueue,
        forwarder: Forwarder,
        config: RelayConfig,
        metrics: Metrics,
        resolver: ContainerResolver | None = None,
    ):
        self._queue, self._forwarder, self._config = queue, forwarder, config
        self._metrics = metrics
        self._resolver = resolver
        self._delivered_ns = 0  # newest event time delivered (progress markers carry it)
        self._newest_at = 0.0  # loop time at which the resolver's newest event arrived
        self.running = False
        self._settlement: Settlement | None = None
        self._checkpointer: Checkpointer | None = None

    def keep(self, settlement: Settlement, checkpointer: Checkpointer) -> None:
        """Settle taken events into ``settlement`` and save ``checkpointer`` (whose
        follower is the intake) periodically and at shutdown (see the module docstring)."""
        self._settlement, self._checkpointer = settlement, checkpointer

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                taken = await self._collect()
                try:
                    batch = self._resolved(taken)
                    if batch:
                        await self._deliver(batch)
                finally:
                    for _ in taken:
                        self._queue.done()
        finally:
            self.running = False
            await self._forwarder.close()

    async def tick(self, period_s: float) -> None:
        """Progress markers (a no-op for HTTP), every ``progress_interval_s``; with
        :meth:`keep`, the checkpoint of the intake log's position too."""
        if self._checkpointer is None:
            return await self._markers(period_s)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._checkpointer.run(_NO_STATE))
            group.create_task(self._markers(period_s))

    async def _markers(self, period_s: float) -> None:
        interval = self._config.kafka.progress_interval_s if self._config.kafka else period_s
        while True:
            await asyncio.sleep(interval)
            if self._delivered_ns:
                try:
                    await self._forwarder.mark(self.progress_ns())
                except (PermanentDeliveryError, TransientDeliveryError) as exc:
                    log.warning("relay_progress_failed", error=str(exc))  # the next one will do

    def progress_ns(self) -> int:
        """Event time up to which this relay delivered all it will deliver in order."""
        held = self._resolver.oldest_held_ns if self._resolver is not None else None
        return self._delivered_ns if held is None else min(self._delivered_ns, held - 1)

    async def flush(self) -> None:
        """Once :meth:`run` has stopped only held alerts remain: counted as not sent,
        unless the intake log keeps them for the restart; then the last checkpoint."""
        if self._resolver is not None and (left := self._resolver.drain()):
            lost = self._unkept(left, "held at shutdown")
            if lost:
                self._dropped(lost, "relay_shutdown", RuntimeError("held at shutdown"))
        if self._checkpointer is not None:
            self._checkpointer.try_save(_NO_STATE)

    def _unkept(self, events: list[Event], why: str) -> list[Event]:
        """The ``events`` the intake log does not keep for a restart (logs the rest)."""
        settlement = self._settlement
        if settlement is None:
            return events
        lost = [event for event in events if not settlement.is_logged(event)]
        if len(lost) < len(events):
            log.info("relay_kept_for_restart", events=len(events) - len(lost), reason=why)
        return lost

    async def _collect(self) -> list[Event]:
        """Up to a batch of events from the queue; none when a hold may have ended."""
        wait = self._hold_wait()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
        # meets the item's arrival, and the relay's stop would wait on a loop that goes on
        try:
            async with asyncio.timeout(wait):
                batch = [self._took(await self._queue.get_item())]
        except TimeoutError:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.linger_s
        while len(batch) < self._config.max_batch_events:
            try:
                batch.append(self._took(self._queue.get_item_nowait()))
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(self._took(await self._queue.get_item()))
            except TimeoutError:
                break
        return batch

    def _took(self, item: Item) -> Event:
        source, _, _, taken = item
        # a relay's receivers make no claims (no rules here); one would be sent as its Event
        event = taken.event() if isinstance(taken, Claim) else taken
        if self._settlement is not None:
            self._settlement.took(source, event)
        return event

    def _hold_wait(self) -> float | None:
        """How long to wait for events before held alerts are looked at again."""
        if self._resolver is None or not self._resolver.holding:
            return None
        return max(self._resolver.hold_s / 4, 0.05)

    def _resolved(self, events: list[Event]) -> list[Event]:
        """The events to send now: through the node resolver, plus holds that ended."""
        resolver = self._resolver
        if resolver is None:
            return events
        newest = resolver.newest_ns
        out = [ready for event in events for ready in resolver.admit(event)]
        now = asyncio.get_running_loop().time()
        if resolver.newest_ns > newest:
            self._newest_at = now
        # a quiet input: clock time since its newest event stands in for event time
        quiet_ns = int(max(0.0, now - self._newest_at) * 1e9)
        out.extend(resolver.expired(resolver.newest_ns + quiet_ns))
        return out

    async def _deliver(self, batch: list[Event]) -> None:
        parts = [batch]
        sent = 0
        try:
            while parts:
                part = parts.pop()
                sent += await self._send_split(part, parts)
        except asyncio.CancelledError:
            left = len(batch) - sent
            settlement = self._settlement
            lost = left
            if settlement is not None:
                unsent = [e for e in batch if settlement.pending(e)]
                lost = len(self._unkept(unsent, "unsent at shutdown"))
            log.error("relay_batch_unsent", events=left, lost=lost, transport=self._forwarder.name)
            self._metrics.drops.labels(reason="relay_shutdown").inc(lost)
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
            self._delivered_ns = max(self._delivered_ns, max(e.time_ns for e in events))
            if self._settlement is not None:
                self._settlement.settle(events)
            return

    def _delay(self, backoff: Backoff, retry_after: float | None) -> float:
        jittered = backoff.next_delay()
        if retry_after is None:
            return jittered
        return min(max(retry_after, jittered), self._config.backoff_max_s)

    def _dropped(self, events: list[Event], reason: str, exc: Exception) -> None:
        log.error("relay_dropped", reason=reason, events=len(events), error=str(exc))
        self._metrics.drops.labels(reason=reason).inc(len(events))
        if self._settlement is not None:  # given up for good: a restart must not retry
            self._settlement.settle(events)


class _NoState:
    """A relay's checkpoint holds no engine state, only the intake log's position."""

    def snapshot(self) -> bytes:
        return b""


_NO_STATE: Final = _NoState()


class NoOutput:
    """The supervisor's output slot in relay mode: a relay emits no chains."""

    async def submit(self, record: dict[str, Any]) -> None:
        raise RuntimeError("a relay does not correlate, so it has no chains to submit")

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def close(self, grace_s: float) -> None:
        return None


def build_relay(config: RelayConfig, queue: EventQueue, metrics: Metrics) -> Relay:
    """The relay for the configured transport (config validation guarantees there is one);
    over Kafka with the node's container resolver (partitions need the pod's namespace)."""
    resolver = None
    if config.kafka is not None:
        kafka = config.kafka
        resolver = ContainerResolver(kafka.resolve_hold_s, kafka.max_held, kafka.max_bindings)
    return Relay(queue, FORWARDERS[config.transport](config), config, metrics, resolver)
