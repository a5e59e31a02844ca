"""Replay inputs: files of JSON lines (optionally gzip) → one stream in event-time order.

Files are read lazily in blocks of :data:`READ_BYTES`, split into lines and parsed
about :data:`BATCH_BYTES` at a time, so a 5-million-event capture is never held in memory
and the per-line Python overhead stays small. Each file passes through a bounded reorder buffer
(:class:`~detector.commands._reorder.Reorder`, at most ``reorder`` events) that absorbs
the small disorder of real captures — audit batches and alerts from several nodes
interleave within seconds; the replay leaves it open while a file's disorder stays within
half the lateness, which the engine absorbs itself — and, when there is more than one
file, the per-file streams are merged with ``heapq.merge``. A file whose buffer has to
pass an event on more than ``max_disorder_ns`` out of order (more than the engine's
lateness absorbs) raises :class:`OutOfOrder`: the replay then starts again with that file
sorted on disk (``_spill``), so the chains never depend on the order of a file's lines.

A line that does not parse is reported (file:line and reason) through ``on_bad``,
counted, and skipped; it never stops the replay.
"""

from __future__ import annotations

import gzip
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from io import BufferedReader
from itertools import chain, islice
from operator import attrgetter
from pathlib import Path
from typing import Final, TypeVar

from correlation.event import Event
from detector.commands._reorder import Reorder, Timed
from detector.commands._spill import SortStats, sorted_batches
from detector.errors import ParseError, SkippedInput, UsageError
from detector.parse import parse_document
from detector.parse.document import parse_line_into
from detector.parse.early import Converter
from detector.parse.limits import MAX_DOCUMENT_BYTES
from detector.readable import why_unreadable

REORDER_EVENTS: Final = 10_000
READ_BYTES: Final = 1 << 16  # below malloc's mmap threshold (see _line_blocks)
BATCH_BYTES: Final = 1 << 20  # lines handed on at a time
MERGE_BATCH: Final = 1024  # events per batch out of the multi-file merge
OnBad = Callable[[Path, int, ParseError], None]
Reader = gzip.GzipFile | BufferedReader
_SOURCE: Final = attrgetter("source")
T = TypeVar("T", bound=Timed)  # what the converter makes besides Events (a Claim)


@dataclass
class InputStats:
    """What the readers saw, for the summary (and the metrics of a long-running run)."""

    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)  # by source
    bad: Counter[str] = field(default_factory=Counter)  # by reason
    skipped: Counter[str] = field(default_factory=Counter)  # by reason (not errors)


class OutOfOrder(Exception):  # noqa: N818 - a signal to the replay, not an error
    """A file is out of order by more than its reorder buffer and the lateness absorb."""

    def __init__(self, path: Path, behind_ns: int) -> None:
        super().__init__(f"{path}: an event {behind_ns / 1e9:,.0f} s older than one before it")
        self.path, self.behind_ns = path, behind_ns


@dataclass
class Ordering:
    """How each file is put in order: which to sort on disk, and the tolerated disorder."""

    max_disorder_ns: int | None = None  # None: pass any disorder on (no OutOfOrder)
    sort: set[Path] = field(default_factory=set)
    spill_dir: str | None = None
    sorts: dict[Path, SortStats] = field(default_factory=dict)


def check_paths(paths: Iterable[str]) -> list[Path]:
    """The input paths, or :class:`UsageError` naming every one that cannot be read.

    Anything readable that is not a directory is an input: a file, ``/dev/stdin``,
    ``/dev/null``, a FIFO. Opening it is left to the reader (opening a FIFO here would
    wait for its writer, and a second open would see a different stream).
    """
    resolved = [Path(p) for p in paths]
    problems = [f"{why}: {p}" for p in resolved if (why := why_unreadable(p))]
    if problems:
        raise UsageError("; ".join(problems))
    return resolved


def merged_events(
    paths: list[Path],
    stats: InputStats,
    on_bad: OnBad,
    reorder: int = REORDER_EVENTS,
    early: Converter[T] | None = None,
) -> Iterator[Event | T]:
    """All events of all files, merged by event time (ties keep file, then line order).

    With ``early``, events no loaded rule can use come as time-only ticks (``parse.early``),
    and with its ``claiming`` view pod-token requests as claims (``Engine.claimed``),
    except in a file sorted on disk (they are built there: a claim has no id to sort by).
    """
    return chain.from_iterable(merged_batches(paths, stats, on_bad, reorder, early))


def merged_batches(
    paths: list[Path],
    stats: InputStats,
    on_bad: OnBad,
    reorder: int = REORDER_EVENTS,
    early: Converter[T] | None = None,
    ordering: Ordering | None = None,
) -> Iterator[Sequence[Event | T]]:
    """:func:`merged_events` as lists of consecutive events (the replay's fast path)."""
    ordering = ordering or Ordering()
    streams = [_ordered(p, stats, on_bad, early, reorder, ordering) for p in paths]
    if len(streams) == 1:
        return streams[0]
    merged = heapq.merge(*(chain.from_iterable(s) for s in streams), key=_time)
    return iter(lambda: list(islice(merged, MERGE_BATCH)), [])


def _time(event: Timed) -> int:
    return event.time_ns


def read_events(path: Path, stats: InputStats, on_bad: OnBad) -> Iterator[Event]:
    """The events of one file in file order; bad lines go to ``on_bad`` and the counters."""
    return chain.from_iterable(read_batches(path, stats, on_bad))


def read_batches(
    path: Path, stats: InputStats, on_bad: OnBad, early: Converter[T] | None = None
) -> Iterator[list[Event | T]]:
    """:func:`read_events` a block of lines at a time (empty blocks are not yielded)."""
    with _open(path) as handle:
        if path.suffix == ".json" and handle.seekable():  # a pipe cannot be re-read
            whole = _whole_document(handle, path, stats, on_bad, early)
            if whole is not None:
                yield whole
                return
            handle.seek(0)
        for first, lines in _line_blocks(handle):
            events = _parse_lines(lines, first, path, stats, on_bad, early)
            if events:
                yield events


def _open(path: Path) -> Reader:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _whole_document(
    handle: Reader, path: Path, stats: InputStats, on_bad: OnBad, early: Converter[T] | None
) -> list[Event | T] | None:
    """A ``.json`` file may hold one pretty-printed document; None means "read it as lines"."""
    data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if data.count(b"\n", 0, len(data.rstrip())) == 0:
        return None  # a single line: the line reader reports it with its line number
    try:
        parse_document(data)
    except ParseError:
        return None  # JSON lines (or broken): read line by line for precise reports
    return _parse_lines([data], 1, path, stats, on_bad, early)


def _line_blocks(handle: Reader) -> Iterator[tuple[int, list[bytes]]]:
    """Lists of whole lines (about :data:`BATCH_BYTES` each) with the number of the first.

    The file is read :data:`READ_BYTES` at a time: a fresh buffer above malloc's mmap
    threshold (128 KiB) is page-faulted in on every read, which cost more than splitting
    the lines. A line that spans reads is kept as a list of pieces (joined once, so a long
    line costs linear time); one longer than the document limit is passed on with its
    first ``MAX_DOCUMENT_BYTES + 1`` bytes (so it fails as too large) and the rest skipped.
    """
    number, size = 1, 0
    lines: list[bytes] = []
    head: list[bytes] = []  # pieces of a line that spans reads
    head_len, skipping = 0, False
    while block := handle.read(READ_BYTES):
        size += len(block)
        if head or skipping:
            end = block.find(b"\n")
            if end < 0:
                if not skipping:
                    head.append(block)
                    head_len += len(block)
                    if head_len > MAX_DOCUMENT_BYTES:
                        lines.append(b"".join(head)[: MAX_DOCUMENT_BYTES + 1])
                        head, head_len, skipping = [], 0, True
                continue
            if not skipping:
                head.append(block[:end])
                lines.append(b"".join(head))
                head, head_len = [], 0
            block, skipping = block[end + 1 :], False
        found = block.split(b"\n")
        tail = found.pop()
        lines += found
        if tail:
            head, head_len = [tail], len(tail)
        if size >= BATCH_BYTES and lines:
            yield number, lines
            number, lines, size = number + len(lines), [], 0
    if head:
        lines.append(b"".join(head))
    if lines:
        yield number, lines


def _parse_lines(
    lines: list[bytes],
    first: int,
    path: Path,
    stats: InputStats,
    on_bad: OnBad,
    early: Converter[T] | None = None,
) -> list[Event | T]:
    events: list[Event | T] = []
    errors: list[ParseError] = []
    for number, line in enumerate(lines, first):
        try:
            parse_line_into(events, line, errors, early)
        except SkippedInput as exc:
            stats.skipped[exc.reason] += 1
        except ParseError as exc:
            errors.append(exc)
        if errors:
            for error in errors:
                stats.bad[error.reason] += 1
                on_bad(path, number, error)
            errors.clear()
    stats.lines += len(lines)
    stats.events.update(map(_SOURCE, events))
    return events


def _ordered(
    path: Path,
    stats: InputStats,
    on_bad: OnBad,
    early: Converter[T] | None,
    size: int,
    ordering: Ordering,
) -> Iterator[Sequence[Event | T]]:
    """One file's batches in event-time order: sorted on disk, or through the buffer.

    A file sorted on disk is parsed into Events only (``early.events``): the sort orders
    by ``(time_ns, id)`` and spills msgpack, and a claim has neither an id nor a wire form
    (building claims there would decode their JSON a second time)."""
    if path in ordering.sort:
        plain = None if early is None else early.events
        sorts = ordering.sorts.setdefault(path, SortStats())
        return sorted_batches(read_batches(path, stats, on_bad, plain), sorts, ordering.spill_dir)
    return _reordered(
        path, read_batches(path, stats, on_bad, early), size, ordering.max_disorder_ns
    )


def _reordered(
    path: Path, batches: Iterable[list[Event | T]], size: int, limit: int | None
) -> Iterator[list[Event | T]]:
    """The batches re-sorted within a sliding buffer of ``size`` events (see ``_reorder``)."""
    # open while the disorder stays within half the lateness (see _reorder's docstring)
    buffer: Reorder[Event | T] = Reorder(size, None if limit is None else limit // 2)
    for batch in batches:
        out = buffer.push(batch)
        _check(path, buffer, limit)
        if out:
            yield out
    rest = buffer.drain()
    _check(path, buffer, limit)  # what stayed buffered may be older than what passed open
    if rest:
        yield rest


def _check(path: Path, buffer: Reorder[Event | T], limit: int | None) -> None:
    if limit is not None and buffer.worst_ns > limit:
        raise OutOfOrder(path, buffer.worst_ns)
