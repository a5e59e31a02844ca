"""The intake write-ahead log: pushed events are on disk before their sender hears 2xx.

A pushed input acknowledges a batch (an HTTP 2xx; for Falco's gRPC stream, the next
request) only after :meth:`IntakeLog.append` wrote it and :meth:`IntakeLog.synced` saw it
fsync'd; the checkpoint file records how much of the log the engine state covers, and a
restart replays the rest::

    offer ─► append(record) ─► queue            (one write() per batch, in event-loop order)
    ack   ◄─ synced()          ◄─ group fsync   (one fsync for every batch written since
                                                 the last one, on a worker thread)
    checkpoint saved, holding the covered seq ─► commit(covered): segments below it deleted
    start ─► covered seq from the checkpoint ─► records after it are replayed ─► appends

Layout (a directory, owner-only)::

    <first seq, 20 digits>.seg2  records, oldest segment first; a segment is closed at
                                 ``segment_bytes`` and named after its first event's seq

    record = u32 payload length | u32 crc32(payload) | payload (msgpack: source, input,
             arrival time, events, body, count)

The checksum is zlib's CRC-32, computed with ISA-L's (``isal``): the same values at
~20 GB/s instead of ~1.5, which for an audit body of 250 KB is ~12 µs instead of ~150 of
the server's CPU per request.

A record holds either the batch's events or, for a receiver that registered a decoder
with the intake (``POST /k8s-audit``), the request ``body`` as it arrived and the
``count`` of events it decoded to: writing the bytes costs less than encoding the
events again, and replay decodes them the way the receiver did
(:class:`~detector.delivery.intake.Intake`). Format versions are told by the suffix:
``.seg`` segments (version 1, events only, written before bodies were logged) are still
read and replayed; a suffix of a later version is refused at start with
:class:`LogVersionError` (an older release would otherwise skip or cut what it cannot
read). New appends always go to a new ``.seg2`` segment.

Event sequence numbers (seq) count events, not records: the k-th event ever appended has
seq k, so the covered seq is where the logged events the engine had processed at the
snapshot end, and the queue's FIFO order is the log's order. The covered seq lives in the
checkpoint file (``positions["intake_log"]``, written atomically with the engine state,
see :mod:`detector.delivery.checkpoint`); a log whose checkpoint predates that (version 1)
reads the ``covered`` side file older releases wrote, once.

Bounds: the segments never hold more than ``max_bytes``. When an append would pass it,
``when_full: refuse`` refuses the batch (the receiver answers 503 + Retry-After) and
``drop_oldest`` deletes the oldest segments, counting their events not yet covered as
``detector_intake_log_dropped_total`` (they are still correlated; only a crash before the
next checkpoint would lose them).

A torn or corrupt record (bad length or CRC, e.g. a crash mid-write) ends its segment:
the file is truncated at the last good record, counted
(``detector_intake_log_corrupt_total``) and logged; the records it held were never
acknowledged unless the disk lied about an fsync. A segment cut that way in the middle of
the log leaves a hole in the seqs (the next segment is named after its own first seq):
:meth:`IntakeLog.tail` hands each record's seq with it, so the replay
(:class:`~detector.delivery.intake.Intake`) steps over the hole and the covered seq, and
with it segment deletion, moves past it.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec
from isal.isal_zlib import crc32

from correlation.event import Event, Incoming
from detector.logging import get_logger
from detector.metrics import Metrics

log = get_logger("detector.intake_log")
_HEADER: Final = struct.Struct(">II")
_SUFFIX: Final = ".seg2"  # this version's segments
_READ: Final = (".seg", ".seg2")  # the versions this release reads (1, 2)
COVERED: Final = "covered"  # the side file of releases before positions in the checkpoint
WhenFull = Literal["refuse", "drop_oldest"]


class Record(msgspec.Struct, array_like=True, gc=False):
    """One offered batch: the receiver (queue source), the sender (input), when it
    arrived on the receiving clock (ns) and the events, or the body they decode from and
    how many they are (a version-1 record has the first four fields only)."""

    source: str
    input: str
    arrived_ns: int
    events: list[Event]
    body: bytes = b""
    count: int = 0

    @property
    def size(self) -> int:
        """How many events (and seqs) the record holds."""
        return self.count if self.body else len(self.events)


class LogVersionError(Exception):
    """The log directory holds segments of a format this release cannot read."""


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Record)


@dataclass
class _Segment:
    first: int  # seq of its first event
    path: Path
    size: int
    events: int = 0


class IntakeLog:
    """Segments in ``directory``; see the module docstring for the protocol."""

    def __init__(
        self,
        directory: Path,
        metrics: Metrics,
        segment_bytes: int = 16 << 20,
        max_bytes: int = 1 << 30,
        when_full: WhenFull = "refuse",
        covered: int = 0,
    ) -> None:
        """``covered``: the seq the restored checkpoint covers (0: no checkpoint; for a
        version-1 checkpoint :func:`legacy_covered`)."""
        self.directory, self._metrics = directory, metrics
        self._segment_bytes, self._max_bytes, self._when_full = segment_bytes, max_bytes, when_full
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.covered = covered
        self._segments = self._scan()
        self._bytes = sum(s.size for s in self._segments)  # on disk (kept, not summed per append)
        self.next_seq = max([self.covered, *(s.first + s.events for s in self._segments)])
        self._fd = -1
        self._dirty: set[int] = set()  # fds written since the last fsync
        self._retired: list[int] = []  # closed segments' fds, closed after their fsync
        self._new_entry = False  # a segment was created since the last directory fsync
        self._written = self._synced = 0  # bytes appended since start
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._syncer: asyncio.Task[None] | None = None
        self._delete_covered()  # a crash between a checkpoint and its commit left them

    # --- start: what is on disk -----------------------------------------------------------
    def _scan(self) -> list[_Segment]:
        segments = []
        for path in _segment_paths(self.directory):
            segment = _Segment(int(path.name.split(".", 1)[0]), path, 0)
            good = 0
            for size, record in _records(path):
                if record is None:
                    self._corrupt(path, good)
                    break
                good += size
                segment.events += record.size
            segment.size = good
            if good:
                segments.append(segment)
            else:  # created, then a crash before its first record: nothing to keep
                path.unlink()
        return segments

    def _corrupt(self, path: Path, good: int) -> None:
        total = path.stat().st_size
        os.truncate(path, good)
        self._metrics.intake_log_corrupt.inc()
        log.error("intake_log_corrupt", segment=path.name, kept_bytes=good, cut_bytes=total - good)

    def tail(self) -> Iterator[tuple[int, Record]]:
        """``(seq of its first event, record)`` of each logged record after ``covered``,
        oldest first: what a restart must replay. The first one is cut to the events past
        ``covered``, unless it holds a body: a body is whole, so the caller decodes it and
        skips its first ``covered - seq`` events. A seq past the previous record's end is
        a hole (a cut segment)."""
        for segment in self._segments:
            seq = segment.first
            for _, record in _records(segment.path):
                if record is None:
                    break
                end = seq + record.size
                if end > self.covered:
                    skip = 0 if record.body else max(0, self.covered - seq)
                    yield seq + skip, _cut(record, skip)
                seq = end

    # --- append and sync ---------------------------------------------------------------
    def append(
        self,
        source: str,
        input: str,
        arrived_ns: int,
        events: Sequence[Incoming],
        body: bytes = b"",
    ) -> bool:
        """Write one batch (not yet durable: await :meth:`synced`): its events, or with
        ``body`` the bytes they were decoded from (their count is kept beside it; without
        one, a claim is logged as the Event it stands for). False when the log is full
        and ``when_full`` is ``refuse``."""
        if body:
            record = Record(source, input, arrived_ns, [], body, len(events))
        else:
            logged = [e if isinstance(e, Event) else e.event() for e in events]
            record = Record(source, input, arrived_ns, logged)
        payload = _encoder.encode(record)
        header = _HEADER.pack(len(payload), crc32(payload))
        size = len(header) + len(payload)
        if not self._make_room(size):
            return False
        segment = self._writable(size)
        os.writev(self._fd, (header, payload))  # no copy of the payload into one blob
        self._dirty.add(self._fd)
        segment.size += size
        segment.events += len(events)
        self.next_seq += len(events)
        self._written += size
        self._bytes += size
        self._metrics.intake_log_bytes.set(self._bytes)
        return True

    async def synced(self) -> None:
        """Return once everything appended before the call is fsync'd."""
        if self._synced >= self._written:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._written, waiter))
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.create_task(self._sync_loop(), name="intake-log-sync")
        await asyncio.shield(waiter)

    async def _sync_loop(self) -> None:
        """Group commit: one fsync round covers every batch written before it began."""
        while self._waiters:
            target, fds, retired = self._written, list(self._dirty), self._retired
            directory = self.directory if self._new_entry else None
            self._dirty, self._retired, self._new_entry = set(), [], False
            try:
                await asyncio.to_thread(_fsync_all, fds, retired, directory)
            except OSError as exc:
                self._fail_waiters(exc)
                continue
            self._synced = target
            done = [w for w in self._waiters if w[0] <= target]
            self._waiters = [w for w in self._waiters if w[0] > target]
            for _, waiter in done:
                if not waiter.done():
                    waiter.set_result(None)

    def _fail_waiters(self, exc: OSError) -> None:
        log.error("intake_log_sync_failed", error=exc.strerror)
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(exc)
        self._waiters = []

    def _writable(self, size: int) -> _Segment:
        current = self._segments[-1] if self._segments and self._fd >= 0 else None
        if current is not None and current.size + size <= self._segment_bytes:
            return current
        if self._fd >= 0:
            self._retired.append(self._fd)
        path = self.directory / f"{self.next_seq:020d}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._dirty.add(self._fd)
        self._new_entry = True
        segment = _Segment(self.next_seq, path, 0)
        self._segments.append(segment)
        return segment

    def _make_room(self, size: int) -> bool:
        while self._bytes + size > self._max_bytes:
            closed = self._segments[:-1] if self._fd >= 0 else self._segments
            if self._when_full == "refuse" or not closed:
                self._metrics.intake_log_refused.inc()
                return False
            self._drop(closed[0])
        return True

    def _drop(self, segment: _Segment) -> None:
        uncovered = max(0, segment.first + segment.events - max(self.covered, segment.first))
        self._segments.remove(segment)
        segment.path.unlink(missing_ok=True)
        self._recount()
        if uncovered:
            self._metrics.intake_log_dropped.inc(uncovered)
            log.warning("intake_log_dropped", segment=segment.path.name, events=uncovered)

    # --- checkpoint ---------------------------------------------------------------------
    def commit(self, covered: int) -> None:
        """A checkpoint holding ``covered`` (the seq up to which the engine state has the
        logged events) is on disk: delete the segments it covers entirely."""
        if covered <= self.covered:
            return
        self.covered = covered
        self._delete_covered()
        (self.directory / COVERED).unlink(missing_ok=True)  # the checkpoint holds it now

    def _delete_covered(self) -> None:
        """Delete every segment whose events all lie below ``covered`` (the open one
        stays: it takes the next appends)."""
        while len(self._segments) > 1 and self._segments[1].first <= self.covered:
            done = self._segments.pop(0)
            done.path.unlink(missing_ok=True)
        if self._segments and self._fd < 0:
            last = self._segments[-1]
            if last.first + last.events <= self.covered:
                self._segments.pop().path.unlink(missing_ok=True)
        self._recount()

    def unreadable(self, record: Record, decoded: int, reason: str) -> None:
        """A logged body did not decode to its count again (the replay's decoder said
        ``reason``): counted as corrupt, its missing events become a hole."""
        self._metrics.intake_log_corrupt.inc()
        log.error(
            "intake_log_body_unreadable",
            source=record.source,
            reason=reason,
            events=record.count,
            decoded=decoded,
        )

    def replayed(self, count: int) -> None:
        """``count`` logged events were queued again at start."""
        self._metrics.intake_log_replayed.inc(count)

    def close(self) -> None:
        """fsync and close the open segments (shutdown)."""
        for fd in {self._fd, *self._retired, *self._dirty} - {-1}:
            os.fsync(fd)
            os.close(fd)
        self._fd, self._retired, self._dirty = -1, [], set()

    def _recount(self) -> None:
        """The bytes on disk again, after segments were deleted."""
        self._bytes = sum(s.size for s in self._segments)
        self._metrics.intake_log_bytes.set(self._bytes)


def _records(path: Path) -> Iterator[tuple[int, Record | None]]:
    """(size, record) of each record in a segment; (0, None) at a torn or corrupt one."""
    data = path.read_bytes()
    at = 0
    while at < len(data):
        if at + _HEADER.size > len(data):
            yield 0, None
            return
        length, crc = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + _HEADER.size + length]
        if len(payload) != length or crc32(payload) != crc:
            yield 0, None
            return
        try:
            record = _decoder.decode(payload)
        except msgspec.DecodeError:
            yield 0, None
            return
        yield _HEADER.size + length, record
        at += _HEADER.size + length


def _cut(record: Record, skip: int) -> Record:
    if not skip:
        return record
    return Record(record.source, record.input, record.arrived_ns, record.events[skip:])


def _segment_paths(directory: Path) -> list[Path]:
    """The segments of every version this release reads, in seq order; a segment of a
    later version raises :class:`LogVersionError` (refused, never cut or skipped)."""
    found: list[tuple[int, Path]] = []
    for path in directory.glob("*.seg*"):
        first, _, version = path.name.partition(".")
        if "." + version not in _READ:
            raise LogVersionError(
                f"intake log {directory}: {path.name} is a segment of a newer format than "
                f"this release reads ({', '.join(_READ)}); run the release that wrote it"
            )
        found.append((int(first), path))
    return [path for _, path in sorted(found)]


def legacy_covered(directory: Path) -> int:
    """The covered seq a release before positions-in-the-checkpoint left in a side file
    (0 when there is none or it is unreadable, which replays the whole log)."""
    try:
        covered = int((directory / COVERED).read_text().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:
        log.error("intake_log_covered_unreadable", path=str(directory / COVERED))
        return 0
    log.info("intake_log_covered_migrated", covered=covered, source=COVERED)
    return covered


def _fsync_all(fds: list[int], retired: list[int], directory: Path | None) -> None:
    for fd in fds:
        os.fsync(fd)
    for fd in retired:
        if fd not in fds:
            os.fsync(fd)
        os.close(fd)
    if directory is None:
        return
    # A new segment's directory entry must be durable too.
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
