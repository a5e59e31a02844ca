"""Outbox → sinks: durable submit, per-sink routing, retries, dead letters, expiry.

::

    submit(record) ──► route (min_severity, rules_include/exclude) ──► outbox.add ──► wake
                                                                                     │
    run():  one loop per sink ◄──────────────────────────────────────────────────────┘
              due rows (oldest first, leftovers of a previous run included)
              deliver ─ ok ────────► ack (each record; batched per round for a
                                     sink that deduplicates re-sends: Kafka)
                      ─ transient ─► count the attempt, back off the whole sink
                                     (exponential + jitter, at least Retry-After), retry
                      ─ permanent ─► dead-letter table with the reason, go on
            + an expiry loop: records older than max_age_s, pending gauges

:meth:`Delivery.close` is bounded: ``grace_s`` to drain, then the loops are cancelled and
waited for ``CANCEL_WAIT_S`` at most, cancelled again each round
(:mod:`detector.cancelling`: a library may swallow one cancellation); a loop that still
runs is logged and stops at its next step, and close goes on releasing the sinks and the
outbox. The waits inside use
``asyncio.timeout``, which never swallows a cancellation.

A transient failure stalls its sink in order rather than skipping ahead: a broker
outage delays delivery and never loses or reorders it. The outbox refuses a second
delivery of an id a sink acknowledged; what a crash between a sink's acknowledgement and
the round's ack commit leaves owed is sent again, which the Kafka sink turns into
once-in-the-topic (it reads the topic's tail) and the webhook marks with the same
``Idempotency-Key``; Slack cannot deduplicate (docs/sinks.md, "Outbox semantics").

Exceptions::

    InvalidRecordError (ValueError)   submit() got something that is not a chain record
"""

from __future__ import annotations

import asyncio
import random
import time
from functools import partial
from typing import Any, Final

import orjson
import structlog

from detector.cancelling import CANCEL_WAIT_S, cancel_until_ended
from detector.delivery.outbox import Outbox, Row
from detector.metrics import Metrics
from detector.sinks.base import PermanentDeliveryError, Sink, TransientDeliveryError
from detector.sinks.config import DeliveryConfig, RetryConfig, SinkConfig
from detector.sinks.registry import accepts, build_sink

log = structlog.get_logger(__name__)
_IDLE_POLL_S: Final = 1.0  # a sink loop re-reads the outbox at least this often
_HOUSEKEEPING_S: Final = 5.0


class InvalidRecordError(ValueError):
    """The record lacks what routing and the outbox need (a string ``id``, ...)."""


def backoff_s(failures: int, retry: RetryConfig, retry_after: float | None) -> float:
    """Wait before the next attempt: exponential with jitter, never under ``retry_after``."""
    base = min(retry.max_s, retry.initial_s * retry.multiplier ** max(0, failures - 1))
    jittered = base * (1 + random.uniform(-retry.jitter, retry.jitter))  # noqa: S311 - not crypto
    if retry_after is not None:
        return max(jittered, min(retry_after, retry.max_s))
    return jittered


class Delivery:
    """Durable submit plus one delivery loop per configured sink."""

    def __init__(self, config: DeliveryConfig, metrics: Metrics | None = None) -> None:
        """``metrics``: the service's (the ``detector_outbox_*`` and ``detector_sink_*``
        families of :data:`detector.metrics.SPECS`); a registry of its own by default."""
        self._config = config
        self._metrics = metrics or Metrics()
        self._routes: list[tuple[SinkConfig, Sink]] = [
            (cfg, build_sink(cfg, self._metrics)) for cfg in config.effective_sinks
        ]
        self.outbox = Outbox(config.outbox, on_expired=self._expired, on_repeat=self._repeated)
        self._wake = {cfg.name: asyncio.Event() for cfg, _ in self._routes}
        self._draining = False
        self._abandoned = False  # close() stopped waiting for the loops: they end at once
        self._stop = asyncio.Event()
        self._active = False  # run() began (it may still be opening the outbox)
        self._running = False  # its loops run
        self._tasks: list[asyncio.Task[None]] = []
        self._done = asyncio.Event()
        self._failing: dict[str, str] = {}  # sink -> its last transient failure

    def health(self) -> tuple[list[str], dict[str, str]]:
        """Sinks whose delivery loop is not running, and sinks retrying (with the error)."""
        stopped = [] if self._running else list(self._wake)
        return stopped, dict(self._failing)

    async def submit(self, record: dict[str, Any]) -> None:
        """Store ``record`` for every sink whose routing accepts it; returns once durable."""
        record_id = record.get("id") if isinstance(record, dict) else None
        if not isinstance(record_id, str) or not record_id:
            self._metrics.outbox_rejected.inc()
            raise InvalidRecordError("a chain record needs a non-empty string 'id'")
        sinks = [cfg.name for cfg, _ in self._routes if accepts(cfg, record)]
        if not sinks:
            self._metrics.outbox_unrouted.inc()
            return
        await self.outbox.add(record_id, orjson.dumps(record), sinks)
        self._metrics.outbox_submitted.inc()
        for name in sinks:
            self._wake[name].set()

    async def run(self) -> None:
        """Deliver until cancelled (or, once :meth:`close` began, until drained)."""
        self._begin()
        await self._run_loops()

    def _begin(self) -> None:
        """Mark a run as begun, before its first await: a close() from now on waits for
        this run (its ``_done``), not for a previous one."""
        self._active, self._done, self._tasks = True, asyncio.Event(), []

    async def _run_loops(self) -> None:
        try:
            await self.outbox.open()
            dropped = await self.outbox.forget_sinks_except(list(self._wake))
            if dropped:
                log.warning("outbox_rows_dropped", reason="sink_removed", rows=dropped)
            self._running = True
            async with asyncio.TaskGroup() as group:
                self._tasks = [
                    group.create_task(self._sink_loop(cfg, sink), name=f"sink:{cfg.name}")
                    for cfg, sink in self._routes
                ]
                self._tasks.append(group.create_task(self._housekeeping(), name="housekeeping"))
        finally:
            self._running = self._active = False
            self._done.set()

    async def close(self, grace_s: float) -> None:
        """Deliver what can be delivered within ``grace_s``, then release everything;
        returns within ``grace_s + CANCEL_WAIT_S`` plus the outbox's own close."""
        self._draining = True
        self._stop.set()
        for event in self._wake.values():
            event.set()
        own = None
        if not self._active:  # a run of its own drains the outbox (it ends once nothing is due)
            self._begin()
            own = asyncio.create_task(self._run_loops(), name="delivery-close")
        try:
            if not await _woken(self._done, grace_s):
                await self._cancel_loops(own)
        finally:
            if own is not None and not own.done():
                own.cancel()  # close() itself was cancelled, or the loops were abandoned
        if own is not None and own.done() and not own.cancelled():
            own.result()  # a loop's failure is the caller's to see, as from run()
        await self._report_leftovers()
        for _, sink in self._routes:
            await sink.close()
        await self.outbox.close()

    async def _cancel_loops(self, own: asyncio.Task[None] | None) -> None:
        """Cancel the loops (and close()'s own run) until run() has ended, for
        ``CANCEL_WAIT_S`` at most; a cancellation swallowed once is sent again."""
        if await cancel_until_ended(
            lambda: [*self._tasks, *([own] if own is not None else [])],
            partial(_woken, self._done),
            CANCEL_WAIT_S,
        ):
            return
        self._abandoned = True
        stuck = [task.get_name() for task in self._tasks if not task.done()]
        log.error("delivery_loops_ignored_cancel", tasks=stuck, waited_s=CANCEL_WAIT_S)

    async def _report_leftovers(self) -> None:
        left = await self.outbox.pending_counts()
        if any(left.values()):
            log.warning("delivery_incomplete_at_close", pending=left, kept_in_outbox=True)

    async def _sink_loop(self, cfg: SinkConfig, sink: Sink) -> None:
        failures = 0
        while not self._abandoned:
            rows = await self.outbox.due(cfg.name, self._config.outbox.batch_size)
            if not rows:
                if self._draining:
                    return
                await self._idle(cfg.name)
                continue
            error = await self._deliver_rows(cfg.name, sink, rows)
            await self._refresh_pending(cfg.name)
            if error is None:
                failures = 0
                self._failing.pop(cfg.name, None)
                continue
            failures += 1
            self._failing[cfg.name] = f"{failures} failed rounds, last: {error}"
            await asyncio.sleep(backoff_s(failures, self._config.outbox.retry, error.retry_after))

    async def _idle(self, name: str) -> None:
        event = self._wake[name]
        await _woken(event, _IDLE_POLL_S)
        event.clear()

    async def _deliver_rows(
        self, name: str, sink: Sink, rows: list[Row]
    ) -> TransientDeliveryError | None:
        """Deliver ``rows`` in order; stop at the first transient failure and return it.

        Each delivery is acknowledged in the outbox right away, so a crash re-sends at most
        the one record in flight; a sink that deduplicates re-sends itself
        (``resends_deduplicated``, the Kafka sink) has its round acknowledged at once."""
        delivered: list[int] = []
        per_record = not getattr(sink, "resends_deduplicated", False)
        try:
            for row in rows:
                outcome = await self._deliver_one(name, sink, row)
                if isinstance(outcome, TransientDeliveryError):
                    return outcome
                if outcome:
                    delivered.append(row.seq)
                if per_record and delivered:
                    await self._ack(name, delivered)
                    delivered = []
            return None
        finally:
            if delivered:
                await self._ack(name, delivered)

    async def _ack(self, name: str, seqs: list[int]) -> None:
        await self.outbox.ack(name, seqs)
        self._metrics.sink_delivered.labels(name).inc(len(seqs))

    async def _deliver_one(self, name: str, sink: Sink, row: Row) -> bool | TransientDeliveryError:
        """True: delivered; False: dead-lettered; a transient error: retry later."""
        started = time.monotonic()
        try:
            await sink.deliver(orjson.loads(row.body))
        except TransientDeliveryError as exc:
            self._metrics.sink_failures.labels(name).inc()
            await self.outbox.fail(name, row.seq, str(exc))
            log.warning(
                "delivery_retry",
                sink=name,
                chain_id=row.id,
                attempts=row.attempts + 1,
                error=str(exc),
            )
            return exc
        except PermanentDeliveryError as exc:
            await self._dead_letter(name, row, str(exc))
        except Exception as exc:  # a sink bug or an unformattable record must not stop the loop
            await self._dead_letter(name, row, f"{type(exc).__name__}: {exc}")
        else:
            latency = time.monotonic() - started
            log.info(
                "chain_delivered",
                sink=name,
                chain_id=row.id,
                attempt=row.attempts + 1,
                latency_s=round(latency, 4),
            )
            return True
        finally:
            self._metrics.sink_latency.labels(name).observe(time.monotonic() - started)
        return False

    async def _dead_letter(self, name: str, row: Row, reason: str) -> None:
        self._metrics.sink_dead_letters.labels(name).inc()
        await self.outbox.dead_letter(name, row.seq, reason)
        log.error("delivery_dead_letter", sink=name, chain_id=row.id, reason=reason)

    async def _housekeeping(self) -> None:
        while not self._draining:
            await self.outbox.expire_old()
            await self._refresh_pending()
            await _woken(self._stop, _HOUSEKEEPING_S)

    async def _refresh_pending(self, only: str | None = None) -> None:
        """Set the pending gauges from the table. A sink with nothing owed has no row in
        the table's counts, so it is set to 0 explicitly (else the gauge kept its last
        value after the last record was delivered)."""
        counts = await self.outbox.pending_counts()
        for name in [only] if only is not None else list(self._wake):
            self._metrics.outbox_pending.labels(name).set(counts.get(name, 0))

    def _repeated(self, pairs: list[tuple[str, str]]) -> None:
        """A chain decided again (after a restore or a crash) that a sink already has."""
        for record_id, sink in pairs:
            self._metrics.outbox_repeats.labels(sink=sink).inc()
            log.info("outbox_repeat_refused", id=record_id, sink=sink)

    def _expired(self, ids: list[str], reason: str) -> None:
        self._metrics.outbox_expired.labels(reason).inc(len(ids))
        log.warning("outbox_expired", reason=reason, count=len(ids), chain_ids=ids[:20])


async def _woken(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait for ``event`` up to ``timeout_s``; whether it is set. A cancellation always
    propagates (Python 3.11's ``wait_for`` can lose one that meets the event's set)."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        pass
    return event.is_set()
