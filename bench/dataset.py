"""What every timed stage shares: a dataset's streams read in chunks, clocks, memory.

A dataset directory holds ``truth.json`` and one stream file per arrival order
(``stream.jsonl`` is event-time order; see ``orders.py`` for the others). Stages read a
stream in chunks of :data:`CHUNK` lines, so 5e6 events are never held at once, and time
only their own work with a :class:`Clock` that keeps wall time and this process's CPU
time side by side (the machine is shared: CPU time is what a stage itself cost).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHUNK = 50_000
STREAMING_CHUNK = 1024
_seconds: dict[str, int] = {}


def time_ns(text: str) -> int:
    """Fixed-layout UTC RFC 3339 (``…T10:00:00.123456789Z``) → ns, seconds cached.

    The generators write only this layout; the eql peer's normalizer uses it too, so
    that the comparison measures the engines and decoding, not ``strptime``.
    """
    prefix = text[:19]
    seconds = _seconds.get(prefix)
    if seconds is None:
        seconds = int(datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp())
        _seconds[prefix] = seconds
    fraction = text[20:-1] if len(text) > 20 else ""
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


def chunks(stream: Path, size: int = CHUNK) -> Iterator[list[bytes]]:
    """The stream's lines, ``size`` at a time (newlines kept).

    Streaming stages (decode, the eql pipeline) take small chunks: a chunk's lines are
    held while it is timed, and 50k lines would add ~50 MB to their peak RSS.
    """
    with stream.open("rb", buffering=1 << 20) as handle:
        chunk: list[bytes] = []
        for line in handle:
            chunk.append(line)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def count_lines(stream: Path) -> int:
    return sum(len(chunk) for chunk in chunks(stream, STREAMING_CHUNK))


def rss_kb() -> int:
    """Current resident set size (``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4


def peak_rss_kb() -> int:
    """This process's peak RSS since it started its program (``VmHWM``).

    Not ``ru_maxrss``: Linux carries the parent's peak into a forked child across exec,
    so every stage spawned by a big runner would report at least the runner's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Clock:
    """Accumulated wall and CPU seconds over the regions timed with it."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def __enter__(self) -> Clock:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._wall0
        self.cpu += time.process_time() - self._cpu0

    def result(self, events: int, **more: Any) -> dict[str, Any]:
        """A stage's result: events, wall ``seconds`` and ``cpu_seconds``, and ``more``."""
        return {"events": events, "seconds": self.wall, "cpu_seconds": self.cpu, **more}
