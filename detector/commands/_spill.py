"""External sort of one input's events: sorted runs spilled to disk, then merged.

For a file whose disorder is more than the reorder buffer and the engine's lateness can
absorb (a shuffled export, logs concatenated out of order). Memory stays bounded
whatever the file's size: at most :data:`RUN_EVENTS` events are sorted in memory at a
time, and the merge holds one frame of :data:`FRAME_EVENTS` per run::

    parse → [run 1: sort, spill] [run 2: sort, spill] ... → heapq.merge(frames of each run)

Runs are msgpack frames (``u32 length | list[Event]``) in a temporary directory, removed
when the merge ends (or the reader stops early). Order: ``(time_ns, id)``, a total order
that does not depend on the file's line order, so any permutation of a file gives the
same stream.
"""

from __future__ import annotations

import heapq
import struct
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Final

import msgspec

from correlation.event import Event
from correlation.matcher import sort_key

RUN_EVENTS: Final = 32_768
FRAME_EVENTS: Final = 256
BATCH_EVENTS: Final = 1024
_LENGTH: Final = struct.Struct(">I")


class SortStats(msgspec.Struct):
    """What one sort did (for the replay's progress lines)."""

    events: int = 0
    runs: int = 0
    spilled_bytes: int = 0


def sorted_batches(
    batches: Iterable[list[Event]], stats: SortStats, directory: str | None = None
) -> Iterator[list[Event]]:
    """All events of ``batches`` in ``(time_ns, id)`` order, in lists of ``BATCH_EVENTS``."""
    with tempfile.TemporaryDirectory(prefix="detector-sort-", dir=directory) as tmp:
        runs, last = _spill_runs(batches, Path(tmp), stats)
        files = [path.open("rb") for path in runs]
        try:
            merged = heapq.merge(*(_read_run(f) for f in files), iter(last), key=sort_key)
            yield from _chunks(merged)
        finally:
            for handle in files:
                handle.close()


def _spill_runs(
    batches: Iterable[list[Event]], tmp: Path, stats: SortStats
) -> tuple[list[Path], list[Event]]:
    """Sorted runs on disk, and the last run sorted in memory (the only one, if it fits)."""
    encoder = msgspec.msgpack.Encoder()
    runs: list[Path] = []
    chunk: list[Event] = []
    for batch in batches:
        chunk += batch
        stats.events += len(batch)
        if len(chunk) >= RUN_EVENTS:
            runs.append(_write_run(sorted(chunk, key=sort_key), tmp, len(runs), encoder, stats))
            chunk = []
    chunk.sort(key=sort_key)
    stats.runs += bool(chunk)
    return runs, chunk


def _write_run(
    events: list[Event], tmp: Path, number: int, encoder: msgspec.msgpack.Encoder, stats: SortStats
) -> Path:
    path = tmp / f"run-{number:05d}.msgpack"
    with path.open("wb") as out:
        for start in range(0, len(events), FRAME_EVENTS):
            frame = encoder.encode(events[start : start + FRAME_EVENTS])
            out.write(_LENGTH.pack(len(frame)))
            out.write(frame)
            stats.spilled_bytes += len(frame) + _LENGTH.size
    stats.runs += 1
    return path


def _read_run(handle: IO[bytes]) -> Iterator[Event]:
    decoder = msgspec.msgpack.Decoder(list[Event])
    while header := handle.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield from decoder.decode(handle.read(length))


def _chunks(events: Iterator[Event]) -> Iterator[list[Event]]:
    while chunk := list(islice(events, BATCH_EVENTS)):
        yield chunk
