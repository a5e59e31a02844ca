"""Sources → one bounded queue → engine → delivery, owned by one supervisor.

::

    falco_http ─┐  offer() all-or-none, never waits (HTTP answers 429 when full)
    k8s_audit ──┤
    falco_grpc ─┼─► EventQueue(buffer.max_events) ─► correlate ─► output.submit(record)
    files ──────┘  emit() awaits space (a tailer simply reads later)      ▲
                                           tick: engine.advance(max event time seen)

Event time drives every window. While events flow, the engine's watermark is the
largest event time seen minus ``engine.allowed_lateness_s``; that cannot move without
events, so a chain whose last step was the last event would wait for the next event.
Every ``engine.idle_advance_s`` the :class:`IdleClock` therefore lets wall-clock time
stand in for the missing events, bounded::

    watermark = min(now, max_event_time + idle_elapsed) − lateness
                     │    └ wall time since the last event *arrived* (monotonic)
                     └ never past the present

``idle_elapsed`` (not ``now``) is what moves it, so replayed or old data (event time far
behind ``now``) advance only as fast as time passes after their last arrival, never by a
jump to ``now``; a source whose events run ``d`` behind real time sees one of them
counted late only if its delay grows by more than the lateness meanwhile. With a
:class:`~detector.delivery.checkpoint.Checkpointer` the engine's state is also written every
``checkpoint.interval_s`` by a task of its own.

Shutdown (SIGTERM), within ``shutdown_grace_s``::

    readyz → 503, POSTs → 503   (stop_accepting)
    cancel sources              (tailers: offsets follow the checkpoint below)
    drain the queue             (every accepted event is correlated)
    checkpointer.try_save()     (before flush: flush clears the partial matches)
    engine.flush()              (chains still pending)
    output.close(remaining)     (sinks flushed)
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from correlation.chain import Chain, to_record
from correlation.event import Event
from detector.delivery.checkpoint import Checkpointer, Snapshotable
from detector.logging import get_logger
from detector.metrics import EngineExport, Metrics
from detector.sources.base import Emit, Source

log = get_logger("detector.pipeline")
_YIELD_EVERY = 64  # events between yields, so the HTTP server keeps answering under load


class EngineLike(Protocol):
    """What the pipeline needs from :class:`correlation.engine.Engine`."""

    @property
    def watermark(self) -> int: ...
    def process(self, event: Event) -> list[Chain]: ...
    def advance(self, watermark_ns: int) -> list[Chain]: ...
    def flush(self) -> list[Chain]: ...


class Output(Protocol):
    """Where chain records go (the Delivery, or the local JSON-lines writer)."""

    async def submit(self, record: dict[str, Any]) -> None: ...
    async def run(self) -> None: ...
    async def close(self, grace_s: float) -> None: ...


class Worker(Protocol):
    """What drains the queue: the :class:`Correlator`, or a relay (``mode: relay``)."""

    running: bool

    async def run(self) -> None: ...
    async def tick(self, period_s: float) -> None: ...
    async def flush(self) -> None: ...


class Stoppable(Protocol):
    def stop_accepting(self) -> None: ...


class EventQueue:
    """The one bounded queue between every source and the engine."""

    def __init__(self, max_events: int, metrics: Metrics) -> None:
        self._queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(maxsize=max_events)
        self._metrics = metrics
        self._closed = False
        # Sources of events taken but not yet done (FIFO, at most max_events) and how many
        # each source had done: a file tailer's offset may only be committed that far.
        self._taken: deque[str] = deque()
        self._done: dict[str, int] = {}
        metrics.queue_capacity.set(max_events)

    def offer(self, source: str, events: Sequence[Event]) -> bool:
        """Enqueue all of ``events`` or none of them; never waits."""
        if self._closed or self._queue.maxsize - self._queue.qsize() < len(events):
            return False
        for event in events:
            self._queue.put_nowait((source, event))
        self._accepted(source, len(events))
        return True

    def emitter(self, source: str) -> Emit:
        """The ``emit`` handed to a source: waits for space (backpressure to the reader)."""

        async def emit(event: Event) -> None:
            await self._queue.put((source, event))
            self._accepted(source, 1)

        return emit

    def _accepted(self, source: str, count: int) -> None:
        self._metrics.events_in.labels(source=source).inc(count)
        self._metrics.queue_depth.set(self._queue.qsize())

    def close(self) -> None:
        """Refuse every further ``offer`` (shutdown)."""
        self._closed = True

    async def get(self) -> Event:
        return self._took(await self._queue.get())

    def get_nowait(self) -> Event:
        """The next event without waiting; ``asyncio.QueueEmpty`` when there is none."""
        return self._took(self._queue.get_nowait())

    def _took(self, item: tuple[str, Event]) -> Event:
        self._taken.append(item[0])
        return item[1]

    def done(self) -> None:
        """The oldest taken event is finished (processed by the engine, or relayed)."""
        source = self._taken.popleft()
        self._done[source] = self._done.get(source, 0) + 1
        self._queue.task_done()
        self._metrics.queue_depth.set(self._queue.qsize())

    def processed(self, source: str) -> int:
        """How many events of ``source`` are done, since start."""
        return self._done.get(source, 0)

    async def drained(self) -> None:
        await self._queue.join()

    def __len__(self) -> int:
        return self._queue.qsize()


class IdleClock:
    """How far event time may be assumed to have moved while the sources are quiet.

    The rule is in the module docstring; ``wall`` and ``monotonic`` are injectable so a
    test can step time instead of sleeping.
    """

    def __init__(
        self,
        lateness_ns: int,
        wall: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._lateness, self._wall, self._monotonic = lateness_ns, wall, monotonic
        self.max_event_ns = 0
        self._arrived_ns = monotonic()

    def saw(self, time_ns: int) -> None:
        """An event arrived (restarts the idle time)."""
        self._arrived_ns = self._monotonic()
        if time_ns > self.max_event_ns:
            self.max_event_ns = time_ns

    def resume(self, engine_watermark_ns: int) -> None:
        """Continue from a restored engine: its event time counts as just arrived."""
        if engine_watermark_ns > 0:
            self.saw(engine_watermark_ns + self._lateness)

    def watermark(self) -> int | None:
        """The bounded watermark, or None before any event."""
        if not self.max_event_ns:
            return None
        idle = self._monotonic() - self._arrived_ns
        return min(self._wall(), self.max_event_ns + idle) - self._lateness


class Correlator:
    """The engine task: events in, chains out, watermark on a timer."""

    def __init__(
        self,
        engine: EngineLike,
        queue: EventQueue,
        output: Output,
        metrics: Metrics,
        clock: IdleClock | None = None,
    ) -> None:
        """``clock``: the idle rule (default: the engine's lateness, real clocks)."""
        self._engine, self._queue, self._output, self._metrics = engine, queue, output, metrics
        self.clock = clock or IdleClock(_lateness_of(engine))
        self.clock.resume(engine.watermark)
        self.running = False
        stats = getattr(engine, "stats", None)
        self._export = EngineExport(metrics, stats() if stats is not None else None)
        if getattr(engine, "on_late", False) is None:
            engine.on_late = self._late  # type: ignore[attr-defined]  # the real Engine

    async def run(self) -> None:
        self.running = True
        try:
            seen = 0
            while True:
                event = await self._queue.get()
                try:
                    self.clock.saw(event.time_ns)
                    await self._publish(self._engine.process(event))
                finally:
                    self._queue.done()
                seen += 1
                if seen % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            self.running = False

    async def tick(self, period_s: float) -> None:
        """Advance the engine's event-time clock every ``period_s`` wall-clock seconds."""
        while True:
            await asyncio.sleep(period_s)
            await self.advance()

    async def advance(self) -> None:
        """Let the engine settle at the idle rule's watermark (never behind its own)."""
        idle = self.clock.watermark()
        if idle is not None:
            watermark = max(self._engine.watermark, idle)
            self._metrics.watermark.set(max(watermark, 0) / 1e9)
            await self._publish(self._engine.advance(watermark))
        self._refresh_stats()

    async def flush(self) -> None:
        await self._publish(self._engine.flush())
        self._refresh_stats()

    async def _publish(self, chains: list[Chain]) -> None:
        now = time.time()
        for chain in chains:
            last = max(step.event.time_ns for step in chain.steps)
            self._metrics.latency.observe(max(0.0, now - last / 1e9))
            self._metrics.chains.labels(rule=chain.rule).inc()
            await self._output.submit(to_record(chain))

    def _refresh_stats(self) -> None:
        stats = getattr(self._engine, "stats", None)
        if stats is not None:
            self._export.apply(stats())

    def _late(self, event: Event) -> None:
        """The engine's late path: counted by source (the event is not correlated)."""
        self._metrics.late_events.labels(source=event.source).inc()


def _lateness_of(engine: EngineLike) -> int:
    """The engine's allowed lateness (ns); 0 for engines without a config."""
    config = getattr(engine, "config", None)
    return int(getattr(config, "lateness_ns", 0))


class Supervisor:
    """Owns every task in one TaskGroup and runs the shutdown sequence on ``stop``."""

    def __init__(
        self,
        sources: Sequence[Source],
        queue: EventQueue,
        correlator: Worker,
        output: Output,
        metrics: Metrics,
        idle_advance_s: float,
        grace_s: float,
        checkpoint: tuple[Checkpointer, Snapshotable] | None = None,
    ) -> None:
        """``checkpoint``: the checkpointer and the engine it snapshots (None = off)."""
        self._metrics = metrics
        self._sources, self._queue, self._correlator = list(sources), queue, correlator
        self._output, self._tick_s, self._grace_s = output, idle_advance_s, grace_s
        self._checkpoint = checkpoint
        self.stop = asyncio.Event()

    def ready(self) -> bool:
        """Engine running and every source connected or listening."""
        return self._correlator.running and all(s.ready() for s in self._sources)

    async def serve(self) -> None:
        async with asyncio.TaskGroup() as group:
            feeders = [
                group.create_task(s.run(self._queue.emitter(s.name)), name=s.name)
                for s in self._sources
            ]
            workers = [
                group.create_task(self._correlator.run(), name="engine"),
                group.create_task(self._correlator.tick(self._tick_s), name="tick"),
            ]
            if self._checkpoint is not None:
                checkpointer, engine = self._checkpoint
                workers.append(group.create_task(checkpointer.run(engine), name="checkpoint"))
            output = group.create_task(self._output.run(), name="output")
            await self.stop.wait()
            await self._shutdown(feeders, workers)
            output.cancel()

    async def _shutdown(
        self, feeders: list[asyncio.Task[None]], workers: list[asyncio.Task[None]]
    ) -> None:
        deadline = time.monotonic() + self._grace_s
        log.info("shutdown_started", queued=len(self._queue), grace_s=self._grace_s)
        for source in self._sources:
            if hasattr(source, "stop_accepting"):
                source.stop_accepting()
        self._queue.close()
        for task in feeders:
            task.cancel()
        await asyncio.wait(feeders)
        await self._drain(deadline)
        for task in workers:
            task.cancel()
        await asyncio.wait(workers)
        if self._checkpoint is not None:
            checkpointer, engine = self._checkpoint
            checkpointer.try_save(engine)
        await self._correlator.flush()
        await self._output.close(max(0.1, deadline - time.monotonic()))
        log.info("shutdown_complete", undrained=len(self._queue))

    async def _drain(self, deadline: float) -> None:
        try:
            await asyncio.wait_for(self._queue.drained(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            self._queue_lost()

    def _queue_lost(self) -> None:
        left = len(self._queue)
        log.error("shutdown_queue_not_drained", events=left)
        self._metrics.drops.labels(reason="shutdown_timeout").inc(left)
