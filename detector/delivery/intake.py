"""The pushed inputs' door to the queue: room, all-or-none offer, and the commit before 2xx.

The HTTP receivers (and any other pushed input) never wait for queue space: they ask
:meth:`Intake.room` before reading a body, :meth:`Intake.offer` a decoded batch whole or
not at all, and await :meth:`Intake.committed` before they acknowledge it.

With an :class:`~detector.delivery.intake_log.IntakeLog` every offered batch is written
to the log in the same event-loop step that queues it, and ``committed`` waits for its
fsync, so an acknowledged event survives ``kill -9``. The intake is then also a
checkpoint :class:`~detector.delivery.checkpoint.Follower` with a ``position_key``: at
each snapshot it captures up to which seq the engine has processed the logged events (the
log's covered seq), the checkpoint file stores it beside the engine state, and once that
file is on disk the log deletes the segments below it. At start :meth:`Intake.run` (run as
a source, beside the engine) queues the log's tail after the covered seq under the
original receiver and sender names; until it is done :meth:`room` is 0, so new batches are
refused with 429 + Retry-After and cannot overtake the tail (the log's order is the
queue's).

The covered seq is counted, not looked up: the queue is FIFO, so when the engine has done
``n`` logged events since start they are the first ``n`` after the start's covered seq,
plus every hole the replay stepped over (a segment cut at a corrupt record, segments
``drop_oldest`` deleted), which :attr:`_holes` keeps as (events replayed before it, its
size). In ``mode: relay`` "done" means settled (forwarded or given up) rather than
taken, counted by :class:`detector.relay.settled.Settlement` (:meth:`Intake.counted_by`).

A receiver that can decode its request body again (``POST /k8s-audit``) registers that
decoder (:meth:`Intake.decodes`) and offers the body with the events: the log keeps the
body (cheaper to write than the events are to encode, and whatever the receiver made of
it, claims included), and the replay decodes it with the same decoder. A body that no
longer decodes to the count it was logged with (a release or rules change between the
crash and the restart cannot do that: only the decoding code itself could) is counted
as corrupt and its missing events as a hole.

Falco's gRPC source uses the same door (``offer`` when there is room, ``committed``
before its next request to Falco, see :mod:`detector.sources.falco_grpc`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

from correlation.event import Incoming
from detector.delivery.intake_log import IntakeLog, Record
from detector.errors import ParseError
from detector.logging import get_logger
from detector.pipeline import EventQueue
from detector.sources.base import Emit

log = get_logger("detector.intake")
_REPLAY_POLL_S: Final = 0.01  # waiting for queue room while the tail is replayed
# A receiver's body decoder for the replay: the events, as the receiver decoded them.
BodyDecoder = Callable[[bytes], list[Incoming]]


class Intake:
    """The queue as pushed inputs see it, behind the intake log when there is one."""

    name = "intake_replay"  # as a source: the replay of the log's tail
    position_key = "intake_log"  # as a follower: where the checkpoint keeps the covered seq

    def __init__(self, queue: EventQueue, intake_log: IntakeLog | None = None) -> None:
        self.queue = self._queue = queue
        self._log = intake_log
        self._replaying = intake_log is not None
        # Receivers whose events are logged: their processed counts move "covered".
        self._logged: set[str] = set()
        self._base = intake_log.covered if intake_log is not None else 0
        self._holes: list[tuple[int, int]] = []  # (replayed events before it, its seqs)
        # Logged events done, since start: the queue's processed count by default; a
        # relay counts only what it settled (detector.relay.settled).
        self._done: Callable[[], int] = self._processed
        self._decoders: dict[str, BodyDecoder] = {}  # by source: whose bodies are logged

    @property
    def capacity(self) -> int:
        return self._queue.capacity

    def room(self) -> int:
        if self._replaying:
            return 0
        return self._queue.room()

    def full_reason(self, events: int = 0) -> str:
        """Why :meth:`room` is short or :meth:`offer` refused ``events``: ``replaying``
        (the log's tail goes first), ``intake_log_full`` (its bound) or ``queue_full``."""
        if self._replaying:
            return "replaying"
        room = self._queue.room()
        if self._log is not None and room > 0 and room >= events:
            return "intake_log_full"
        return "queue_full"

    @property
    def logged(self) -> bool:
        """True when batches go through an intake log."""
        return self._log is not None

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def decodes(self, source: str, decoder: BodyDecoder) -> None:
        """``source`` offers bodies that ``decoder`` turns into its events again: the log
        keeps the body instead of the events, and the replay decodes it."""
        self._decoders[source] = decoder

    def offer(
        self, source: str, events: Sequence[Incoming], input: str = "", body: bytes = b""
    ) -> bool:
        """All of ``events`` or none; ``input`` names the sender (detector.event_time);
        ``body``: what they were decoded from (logged instead of them when ``source``
        registered its decoder)."""
        if self.room() < len(events):
            return False
        arrived = self._queue.clock()
        if self._log is not None:
            kept = body if source in self._decoders else b""
            if not self._log.append(source, input or source, arrived, events, kept):
                return False
            self._logged.add(source)
        return self._queue.offer(source, events, input, arrived)

    async def committed(self) -> None:
        """Return once every offered event is as durable as this intake makes it."""
        if self._log is not None:
            await self._log.synced()

    # --- checkpoint follower ------------------------------------------------------------
    def logs(self, source: str) -> bool:
        """Whether the events offered by ``source`` are in the log."""
        return source in self._logged

    def counted_by(self, done: Callable[[], int]) -> None:
        """Count logged events as done only when ``done()`` says so (a relay: settled)."""
        self._done = done

    def _processed(self) -> int:
        return sum(self._queue.processed(s) for s in self._logged)

    def capture(self) -> int:
        """The seq up to which the engine has processed the logged events (the covered
        seq this snapshot stores)."""
        done = self._done()
        return self._base + done + sum(size for at, size in self._holes if done >= at)

    def commit(self, captured: int) -> None:
        if self._log is not None:
            self._log.commit(captured)

    # --- start: replay the tail ---------------------------------------------------------
    async def run(self, emit: Emit) -> None:
        """Queue the log's tail, then open the door; stays running (a source)."""
        if self._log is not None:
            await self._replay(self._log)
        await asyncio.Event().wait()

    def ready(self) -> bool:
        return not self._replaying

    async def _replay(self, intake_log: IntakeLog) -> None:
        count, expected = 0, self._base
        for seq, record in intake_log.tail():
            events: Sequence[Incoming] = record.events
            if record.body:
                events = self._events_of(record, intake_log)
            skip = max(0, expected - seq) if record.body else 0  # a body is logged whole
            seq, events = seq + skip, events[skip:]
            if seq > expected:  # a hole: the events it lacks can never be processed
                self._holes.append((count, seq - expected))
                log.warning("intake_log_hole_skipped", first=expected, events=seq - expected)
            expected = seq + record.size - skip
            self._logged.add(record.source)
            for start in range(0, len(events), self.capacity):
                part = events[start : start + self.capacity]
                # The original arrival: replayed events are as late as they were, no later.
                offer = (record.source, part, record.input, record.arrived_ns)
                while not self._queue.offer(*offer):  # noqa: ASYNC110
                    await asyncio.sleep(_REPLAY_POLL_S)  # the queue signals no "room" event
                count += len(part)
            if len(events) < record.size - skip:  # a short body: the rest is a hole
                self._holes.append((count, record.size - skip - len(events)))
            await asyncio.sleep(0)  # a long tail does not hold /healthz up
        self._replaying = False
        if count:
            log.info("intake_log_replayed", events=count, covered=intake_log.covered)
        intake_log.replayed(count)

    def _events_of(self, record: Record, intake_log: IntakeLog) -> list[Incoming]:
        """A logged body's events, decoded again; at most ``record.count`` of them."""
        decoder = self._decoders.get(record.source)
        try:
            if decoder is None:
                raise ParseError("no_decoder", f"{record.source} is not configured")
            events = decoder(record.body)
        except ParseError as exc:
            events, problem = [], exc.reason
        else:
            problem = "" if len(events) == record.count else "count_mismatch"
        if problem:
            intake_log.unreadable(record, len(events), problem)
        return events[: record.count]

    pulled = False  # as a source: a pushed input (its events carry their own input names)
