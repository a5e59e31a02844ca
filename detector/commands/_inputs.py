"""Replay inputs: files of JSON lines (optionally gzip) → one stream in event-time order.

Files are read lazily, line by line, so a 5-million-event capture is never held in
memory. Each file passes through a bounded reorder buffer (a heap of at most
``reorder`` events) that absorbs the small disorder of real captures — audit batches
and alerts from several nodes interleave within seconds — and the per-file streams
are merged with ``heapq.merge``. Disorder larger than the buffer is left to the
engine's lateness handling, which counts what it cannot place.

A line that does not parse is reported (file:line and reason) through ``on_bad``,
counted, and skipped; it never stops the replay.
"""

from __future__ import annotations

import gzip
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Final

from correlation.event import Event
from detector.errors import ParseError, SkippedInput, UsageError
from detector.parse import parse_document, parse_line
from detector.parse.limits import MAX_DOCUMENT_BYTES

REORDER_EVENTS: Final = 10_000
OnBad = Callable[[Path, int, ParseError], None]
Reader = gzip.GzipFile | BufferedReader


@dataclass
class InputStats:
    """What the readers saw, for the summary (and the metrics of a long-running run)."""

    lines: int = 0
    events: Counter[str] = field(default_factory=Counter)  # by source
    bad: Counter[str] = field(default_factory=Counter)  # by reason
    skipped: Counter[str] = field(default_factory=Counter)  # by reason (not errors)


def check_paths(paths: Iterable[str]) -> list[Path]:
    """The input paths, or :class:`UsageError` naming every one that is not a readable file."""
    resolved = [Path(p) for p in paths]
    missing = [str(p) for p in resolved if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    return resolved


def merged_events(
    paths: list[Path], stats: InputStats, on_bad: OnBad, reorder: int = REORDER_EVENTS
) -> Iterator[Event]:
    """All events of all files, merged by event time (ties keep file, then line order)."""
    streams = [_reordered(read_events(p, stats, on_bad), reorder) for p in paths]
    return heapq.merge(*streams, key=_time)


def _time(event: Event) -> int:
    return event.time_ns


def read_events(path: Path, stats: InputStats, on_bad: OnBad) -> Iterator[Event]:
    """The events of one file in file order; bad lines go to ``on_bad`` and the counters."""
    with _open(path) as handle:
        if path.suffix == ".json":
            whole = _whole_document(handle, path, stats, on_bad)
            if whole is not None:
                yield from whole
                return
            handle.seek(0)
        for number, line in _lines(handle):
            stats.lines += 1
            yield from _parse(line, path, number, stats, on_bad)


def _open(path: Path) -> Reader:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


def _whole_document(
    handle: Reader, path: Path, stats: InputStats, on_bad: OnBad
) -> list[Event] | None:
    """A ``.json`` file may hold one pretty-printed document; None means "read it as lines"."""
    data = handle.read(MAX_DOCUMENT_BYTES + 1)
    if data.count(b"\n", 0, len(data.rstrip())) == 0:
        return None  # a single line: the line reader reports it with its line number
    try:
        parse_document(data)
    except ParseError:
        return None  # JSON lines (or broken): read line by line for precise reports
    stats.lines += 1
    return list(_parse(data, path, 1, stats, on_bad))


def _lines(handle: Reader) -> Iterator[tuple[int, bytes]]:
    """Numbered lines; an over-long line is yielded cut (so it fails as too large)."""
    number = 0
    while True:
        line = handle.readline(MAX_DOCUMENT_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_DOCUMENT_BYTES and not line.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # drop the remainder of the over-long line
        yield number, line


def _parse(
    line: bytes, path: Path, number: int, stats: InputStats, on_bad: OnBad
) -> Iterator[Event]:
    errors: list[ParseError] = []
    try:
        events = parse_line(line, errors)
    except SkippedInput as exc:
        stats.skipped[exc.reason] += 1
        return
    except ParseError as exc:
        errors.append(exc)
        events = []
    for error in errors:
        stats.bad[error.reason] += 1
        on_bad(path, number, error)
    for event in events:
        stats.events[event.source] += 1
        yield event


def _reordered(events: Iterator[Event], size: int) -> Iterator[Event]:
    """``events`` re-sorted within a sliding buffer of ``size`` (stable for equal times)."""
    heap: list[tuple[int, int, Event]] = []
    for seq, event in enumerate(events):
        if len(heap) < size:
            heapq.heappush(heap, (event.time_ns, seq, event))
        else:
            yield heapq.heappushpop(heap, (event.time_ns, seq, event))[2]
    while heap:
        yield heapq.heappop(heap)[2]
