"""External sort of one input's events: sorted runs spilled to disk, then merged.

For a file whose disorder is more than the reorder buffer and the engine's lateness can
absorb (a shuffled export, logs concatenated out of order). Memory stays bounded
whatever the file's size: at most :data:`RUN_EVENTS` events are sorted in memory at a
time, and a merge holds one frame of :data:`FRAME_EVENTS` per run it reads, of at most
:data:`FAN_IN` runs (more runs are first merged in groups into longer runs on disk)::

    parse → [run 1: sort, spill] [run 2: sort, spill] ... → heapq.merge(frames of each run)

Runs are msgpack frames (``u32 length | list[Event]``) in a temporary directory, removed
when the merge ends (or the reader stops early). Order: ``(time_ns, id)``, a total order
that does not depend on the file's line order, so any permutation of a file gives the
same stream.

The sizes keep a 1e6-event shuffled replay within the memory of an ordered one: 32,768
events per run and frames of 256 peaked at 89 MiB, 16,384 and 64 at 69 MiB, in the same
CPU time (bench/README.md, "Figures").
"""

from __future__ import annotations

import heapq
import struct
import tempfile
from collections.abc import Generator, Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import IO, Final

import msgspec

from correlation.event import Event
from correlation.matcher import sort_key

RUN_EVENTS: Final = 16_384
FRAME_EVENTS: Final = 64
FAN_IN: Final = 128
BATCH_EVENTS: Final = 1024
_LENGTH: Final = struct.Struct(">I")


class SortStats(msgspec.Struct):
    """What one sort did (for the replay's progress lines)."""

    events: int = 0
    runs: int = 0
    spilled_bytes: int = 0


def sorted_batches(
    batches: Iterable[list[Event]], stats: SortStats, directory: str | None = None
) -> Generator[list[Event], None, None]:
    """All events of ``batches`` in ``(time_ns, id)`` order, in lists of ``BATCH_EVENTS``
    (closing the generator early removes the runs too)."""
    with tempfile.TemporaryDirectory(prefix="detector-sort-", dir=directory) as tmp:
        spill = _Spill(Path(tmp), stats)
        runs, last = spill.runs(batches)
        runs = spill.narrowed(runs)
        with ExitStack() as files:
            yield from _chunks(_merged(runs, files, iter(last)))


class _Spill:
    """Writes the sorted runs of one sort into its temporary directory."""

    def __init__(self, tmp: Path, stats: SortStats) -> None:
        self._tmp = tmp
        self._stats = stats
        self._encoder = msgspec.msgpack.Encoder()
        self._written = 0

    def runs(self, batches: Iterable[list[Event]]) -> tuple[list[Path], list[Event]]:
        """Sorted runs on disk, and the last run sorted in memory (the only one, if it fits)."""
        runs: list[Path] = []
        chunk: list[Event] = []
        for batch in batches:
            chunk += batch
            self._stats.events += len(batch)
            if len(chunk) >= RUN_EVENTS:
                runs.append(self._write(sorted(chunk, key=sort_key)))
                chunk = []
        chunk.sort(key=sort_key)
        self._stats.runs += len(runs) + bool(chunk)
        return runs, chunk

    def narrowed(self, runs: list[Path]) -> list[Path]:
        """At most ``FAN_IN`` runs: the oldest ones merged in groups into longer runs, so the
        final merge holds ``FAN_IN`` frames however long the file (a file of millions of
        events costs one more pass over its spilled bytes, not memory or file handles)."""
        while len(runs) > FAN_IN:
            group, runs = runs[:FAN_IN], runs[FAN_IN:]
            with ExitStack() as files:
                runs.append(self._write(_merged(group, files, iter(()))))
            for path in group:
                path.unlink()
        return runs

    def _write(self, events: Iterable[Event]) -> Path:
        path = self._tmp / f"run-{self._written:05d}.msgpack"
        self._written += 1
        ordered = iter(events)
        with path.open("wb") as out:
            while frame_events := list(islice(ordered, FRAME_EVENTS)):
                frame = self._encoder.encode(frame_events)
                out.write(_LENGTH.pack(len(frame)))
                out.write(frame)
                self._stats.spilled_bytes += len(frame) + _LENGTH.size
        return path


def _merged(runs: list[Path], files: ExitStack, last: Iterator[Event]) -> Iterator[Event]:
    """The events of ``runs`` (opened into ``files``, which closes them) and ``last``, merged."""
    readers = [_read_run(files.enter_context(path.open("rb"))) for path in runs]
    return heapq.merge(*readers, last, key=sort_key)


def _read_run(handle: IO[bytes]) -> Iterator[Event]:
    decoder = msgspec.msgpack.Decoder(list[Event])
    while header := handle.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield from decoder.decode(handle.read(length))


def _chunks(events: Iterator[Event]) -> Iterator[list[Event]]:
    while chunk := list(islice(events, BATCH_EVENTS)):
        yield chunk
