"""Sources → one bounded queue → engine → delivery, owned by one supervisor.

::

    falco_http ─┐  offer() all-or-none, never waits (HTTP answers 429 when full)
    k8s_audit ──┤  each event stamped (input, arrival time)
    falco_grpc ─┼─► EventQueue(buffer.max_events) ─► correlate ─► output.submit(record)
    files ──────┘  emit() awaits space (a tailer simply reads later)      ▲
                                           tick: engine.advance(receiving clock, at_end)

Event time drives every window (the model is in ``correlation.watermarks``). Every
input — one HTTP sender (receiver and peer address), the gRPC stream, each tailed file —
keeps its own progress inside the engine, and the engine follows the slowest active one.
The queue (:mod:`detector.event_queue`) holds each accepted batch as one entry, stamped
with its arrival time on the receiving clock; the :class:`Correlator` takes runs of up to
:data:`YIELD_EVERY` events of one batch at a time (yielding to the HTTP server between
runs), hands the stamp to the engine with each event, and time-only ticks (the early
reject's, ``detector/parse/early.py``) to ``engine.tick`` and its claims (pod-token
requests not yet normalized) to ``engine.claimed``; every
``engine.idle_advance_s`` tells the engine the clock moved::

    tick: now = wall clock            when the queue is empty
              = arrival of the last   when events wait in the queue (FIFO: everything
                event taken           still queued arrived later, so a pushed input's
                                      "now − delivery bound" is not claimed too early)
          at_end = pulled sources at their end (idle after engine.idle_timeout_s)

Pulled sources (file tailers) stay aligned: one whose own watermark runs more than
``engine.max_drift_s`` ahead of the engine's pauses (:class:`Alignment`), so catching up
on two backlogs read at different speeds loses nothing and keeps memory bounded. Late
events, clock-skewed events and inputs going idle are logged per input, rate-limited
(:class:`InputReports`). With a :class:`~detector.delivery.checkpoint.Checkpointer` the engine's
state is also written every ``checkpoint.interval_s`` by a task of its own.

Shutdown (SIGTERM), within ``shutdown_grace_s``::

    readyz → 503, POSTs → 503   (stop_accepting)
    cancel sources              (tailers: offsets follow the checkpoint below; a task that
                                 swallows a cancellation is cancelled again, CANCEL_WAIT_S)
    drain the queue             (every accepted event is correlated)
    checkpointer.try_save()     (the pending chains stay in it for the restart)
    engine.flush()              (only without a checkpoint, or when it could not be saved)
    output.close(remaining)     (sinks flushed)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Protocol

from correlation.chain import Chain, to_record
from correlation.event import Claim, Event, Incoming
from correlation.watermarks import InputState
from detector.cancelling import CANCEL_WAIT_S, cancel_until_ended
from detector.delivery.checkpoint import Checkpointer, Snapshotable
from detector.event_queue import EventQueue
from detector.event_time import InputReports
from detector.logging import get_logger
from detector.metrics import EngineExport, Metrics
from detector.parse.long_running import LongRunningStages
from detector.sources.base import Emit, Source

__all__ = ["Correlator", "EngineLike", "EventQueue", "Output", "Supervisor", "Worker"]

log = get_logger("detector.pipeline")
# Events taken per run, yielding to the HTTP server between runs so it keeps answering
# under load (~1 ms of engine work). Each run costs a queue take, a coroutine and an event
# loop pass: at 64 that was ~0.1-0.2 us per event more than at 256 (2.65-2.77 vs 2.54 us
# per event for the correlator alone, best of 7, 50k events of the live bench's noise).
YIELD_EVERY: Final = 256


class EngineLike(Protocol):
    """What the pipeline needs from :class:`correlation.engine.Engine`."""

    @property
    def watermark(self) -> int: ...
    def add_input(self, name: str, pushed: bool, disorder_ns: int | None = None) -> None: ...
    def inputs(self) -> list[InputState]: ...
    def process(self, event: Event, input: str = "", now_ns: int = 0) -> list[Chain]: ...
    def tick(self, time_ns: int, source: str, input: str = "", now_ns: int = 0) -> list[Chain]: ...
    def claimed(self, claim: Claim, input: str = "", now_ns: int = 0) -> list[Chain]: ...
    def advance(self, now_ns: int, at_end: Iterable[str] = ()) -> list[Chain]: ...
    def flush(self) -> list[Chain]: ...


Annotate = Callable[[Chain], Awaitable[dict[str, Any]]]


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


class Correlator:
    """The engine task: events in, chains out, the receiving clock on a timer."""

    def __init__(
        self,
        engine: EngineLike,
        queue: EventQueue,
        output: Output,
        metrics: Metrics,
        disorder: Callable[[str], int] | None = None,
        annotate: Annotate | None = None,
    ) -> None:
        """``disorder``: an input's disorder bound (ns) from its source name (default:
        the engine's own lateness); ``annotate``: chain → record (default
        :func:`to_record`; ``detector run`` adds the cluster and stores the chain, see
        :mod:`detector.incidents.service`)."""
        self._engine, self._queue, self._output, self._metrics = engine, queue, output, metrics
        self._annotate = annotate
        self._disorder = disorder or (lambda _source: None)  # type: ignore[return-value]
        self._known: set[str] = set()
        self._last_arrival = 0  # of the last event taken (see the module docstring)
        self._pulled: list[Any] = []  # pulled sources, asked whether they are at their end
        self.running = False
        self._reports = InputReports(metrics)
        inputs = getattr(engine, "inputs", None)
        if inputs is not None:
            self._reports.baseline(inputs())
        self.stages = LongRunningStages()  # checkpointed with the engine (detector run)
        stats = getattr(engine, "stats", None)
        self._export = EngineExport(metrics, stats() if stats is not None else None)
        if getattr(engine, "on_late", False) is None:
            engine.on_late = self._late  # type: ignore[attr-defined]  # the real Engine

    def watch(self, sources: Sequence[Source]) -> None:
        """Declare every pulled source's input now (so it holds the watermark from the
        start) and ask them at each tick whether they are at their end."""
        self._pulled = [s for s in sources if getattr(s, "pulled", False)]
        for source in self._pulled:
            self._declare(source.name, source.name, pushed=False)

    def _declare(self, input: str, source: str, pushed: bool) -> None:
        self._known.add(input)
        self._engine.add_input(input, pushed, self._disorder(source))

    async def run(self) -> None:
        self.running = True
        try:
            while True:
                batch = await self._queue.get_batch(YIELD_EVERY)
                await self._correlate(*batch)
                await asyncio.sleep(0)  # let the HTTP server answer between runs
        finally:
            self.running = False

    async def _correlate(
        self, source: str, input: str, arrived: int, events: Sequence[Incoming]
    ) -> None:
        """One run of events of one input, taken together (they arrived together)."""
        if input not in self._known:
            self._declare(input, source, self._queue.pushed.get(input, True))
        self._last_arrival = arrived
        engine, queue, stages = self._engine, self._queue, self.stages
        folded = stages.folded
        at = done = 0  # of these events: taken by the engine, told the queue are done
        try:
            while at < len(events):
                at, chains = stages.run(engine, events, at, input, arrived)
                if chains:
                    # done up to here before waiting on the output: a checkpoint taken
                    # meanwhile covers exactly what the engine has seen
                    queue.done_many(source, at - done)
                    done = at
                    await self._publish(chains)
        finally:
            queue.done_many(source, len(events) - done)
            if stages.folded != folded:  # later stages of long-running requests seen
                self._metrics.stages_folded.inc(stages.folded - folded)

    async def tick(self, period_s: float) -> None:
        """Advance the engine's receiving clock every ``period_s`` wall-clock seconds."""
        while True:
            await asyncio.sleep(period_s)
            await self.advance()

    async def advance(self) -> None:
        """Tell the engine the clock moved and which pulled sources are at their end."""
        now = self._queue.clock() if not len(self._queue) else self._last_arrival
        # at its end = read to the end *and* the engine has taken all of it (an input is
        # judged idle on the engine's view, or its queued events would come in late)
        at_end = [s.name for s in self._pulled if s.at_end() and not self._queue.waiting(s.name)]
        await self._publish(self._engine.advance(now, at_end))
        self._metrics.watermark.set(max(self._engine.watermark, 0) / 1e9)
        self._reports.look(self._engine.inputs())
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
            record = to_record(chain) if self._annotate is None else await self._annotate(chain)
            log.info(
                "chain_emitted",
                chain_id=record["id"],
                rule=chain.rule,
                incident=record["incident"],
                severity=record["severity"],
            )
            await self._output.submit(record)

    def _refresh_stats(self) -> None:
        stats = getattr(self._engine, "stats", None)
        if stats is not None:
            self._export.apply(stats())

    def _late(self, event: Event) -> None:
        """The engine's late path: counted by source (the event is not correlated)."""
        self._metrics.late_events.labels(source=event.source).inc()


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
        return not self.not_ready()

    def not_ready(self) -> list[str]:
        """What keeps ``/readyz`` at 503: ``engine`` and ``source:<name>`` of each source
        not connected or listening (empty = ready)."""
        found = [] if self._correlator.running else ["engine"]
        return found + [f"source:{s.name}" for s in self._sources if not s.ready()]

    async def serve(self) -> None:
        watch = getattr(self._correlator, "watch", None)
        if watch is not None:  # the relay worker has no engine to tell
            watch(self._sources)
        async with asyncio.TaskGroup() as group:
            feeders = [
                group.create_task(s.run(self._emitter(s)), name=s.name) for s in self._sources
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

    def _emitter(self, source: Source) -> Emit:
        return self._queue.emitter(source.name, pushed=not getattr(source, "pulled", False))

    async def _shutdown(
        self, feeders: list[asyncio.Task[None]], workers: list[asyncio.Task[None]]
    ) -> None:
        deadline = time.monotonic() + self._grace_s
        log.info("shutdown_started", queued=len(self._queue), grace_s=self._grace_s)
        for source in self._sources:
            if hasattr(source, "stop_accepting"):
                source.stop_accepting()
        self._queue.close()
        await _cancelled(feeders)
        await self._drain(deadline)
        await _cancelled(workers)
        saved = False
        if self._checkpoint is not None:
            checkpointer, engine = self._checkpoint
            saved = checkpointer.try_save(engine)
        if saved:
            # What is pending stays in the checkpoint and is decided after the restart as
            # an uninterrupted run decides it (same chain and incident ids). A flush here
            # would decide it early, and the restored engine would decide it again.
            log.info("shutdown_pending_kept", checkpoint=str(checkpointer.path))
        else:
            await self._correlator.flush()
        await self._output.close(max(0.1, deadline - time.monotonic()))
        log.info("shutdown_complete", undrained=len(self._queue))

    async def _drain(self, deadline: float) -> None:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._queue.drained()
        except TimeoutError:
            self._queue_lost()

    def _queue_lost(self) -> None:
        left = len(self._queue)
        log.error("shutdown_queue_not_drained", events=left)
        self._metrics.drops.labels(reason="shutdown_timeout").inc(left)


async def _cancelled(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again (:mod:`detector.cancelling`);
    a task still running after ``CANCEL_WAIT_S`` is logged."""

    async def ended(timeout_s: float) -> bool:
        pending = [task for task in tasks if not task.done()]
        return not pending or not (await asyncio.wait(pending, timeout=timeout_s))[1]

    if not await cancel_until_ended(lambda: tasks, ended):  # a done task ignores cancel()
        names = [task.get_name() for task in tasks if not task.done()]
        log.error("shutdown_tasks_ignored_cancel", tasks=names, waited_s=CANCEL_WAIT_S)
