"""Tail a JSON-lines file (Falco ``file_output``, the API server's audit log).

Follows both rotation styles and resumes after a restart from a saved offset::

    rename (logrotate default)  path's inode changes: finish the old file to EOF,
                                then read the new one from byte 0
    copytruncate                same inode, size < our offset: read again from 0
    restart                     state file = {inode, offset}: same inode -> seek;
                                other inode -> finish the renamed file (found by
                                inode in the same directory), then path from 0

The offset is the first byte not yet handed to ``emit``; it only ever covers complete
lines (a half-written last line waits for its newline). ``emit`` waits while the queue
is full, so a slow engine just makes the tailer read later. The state file is written
atomically (temp file + ``os.replace``).

When is it written? Without engine checkpoints, after each batch and when the task is
cancelled. With them (``processed`` given), the saved offset must not run ahead of the
engine state that covers it, or a ``kill -9`` between checkpoints would lose the lines
in between. So the tailer only *records* ``(events emitted so far, offset)`` after each
batch; as a :class:`~detector.delivery.checkpoint.Follower` it hands the checkpointer the offset
whose events the engine has processed (``processed()`` counts them) and writes it once
the checkpoint is on disk::

    emitted:   10        25        40     (recorded after each batch)
    offset:    4096      9120      15000
    processed = 30 at the snapshot   ->  commit offset 9120 (events 26..30 re-read)
 Lines written between copy and
truncate by copytruncate are lost by design of copytruncate itself.

Event time: a tailer is a *pulled* input (``pulled``): its progress comes only from its
own lines. ``align`` (set by the service) is awaited before each chunk and pauses the
tailer while it is more than ``engine.max_drift_s`` ahead of the others; ``at_end()``
tells the engine it has read everything there is, so it may go idle.

Lines are parsed as replay parses them, through the rules' early reject when the service
gives one (an event no rule can use is emitted as a time-only tick: counted, and it
moves the tailer's event time, but it is not normalized; a request made with a pod's own
token that only a foreign-source-IP step may want is emitted as a claim, which the
engine normalizes only if it matters when it takes it: ``Engine.claimed``).

Reads are plain blocking file reads of at most ``_CHUNK`` bytes per step: local files,
short calls, no thread pool needed.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from correlation.event import Incoming
from detector.config import FileConfig
from detector.errors import ParseError, SkippedInput
from detector.logging import get_logger
from detector.metrics import Metrics
from detector.parse import parse_line
from detector.parse.early import EarlyReject
from detector.sources.base import Emit

log = get_logger("detector.files")
_CHUNK: Final = 1 << 20


class Offset(msgspec.Struct, frozen=True):
    """Where reading resumes: which file (by inode) and the byte after the last line."""

    inode: int
    offset: int


class FileTailer:
    """A :class:`~detector.sources.base.Source` for one tailed file."""

    pulled = True  # progress from its own events only (see correlation.watermarks)

    def __init__(
        self,
        name: str,
        config: FileConfig,
        metrics: Metrics,
        parse: Callable[[bytes], list[Incoming]] | None = None,
        processed: Callable[[], int] | None = None,
        early: EarlyReject | None = None,
    ) -> None:
        """``parse``: line -> events (default :func:`~detector.parse.parse_line`, through
        ``early``, the rules' early reject, when given); ``processed``: events of this
        source the engine is done with (follow mode)."""
        if parse is None:
            parse = parse_line if early is None else partial(parse_line, early=early.claiming)
        self.name, self._config, self._metrics, self._parse = name, config, metrics, parse
        self._processed = processed
        self._emitted = 0
        # (emitted count, offset) after each batch not yet covered by a checkpoint; one
        # entry per batch with events, so no longer than the queue (+1)
        self._marks: deque[tuple[int, Offset]] = deque()
        self._path = Path(config.path)
        self._state_path = Path(config.state_file or f"{config.path}.offset")
        self._file: IO[bytes] | None = None
        self._inode = 0
        self._offset = 0
        self._skipping = False  # inside a line longer than max_line_bytes
        self._started = False
        self._at_end = False
        self.align: Callable[[str], Awaitable[None]] | None = None

    def ready(self) -> bool:
        return self._started

    def at_end(self) -> bool:
        """Whether everything written so far has been read (or there is no file yet)."""
        return self._at_end or (self._started and self._file is None)

    @property
    def offset(self) -> int:
        """The first byte of the current file not yet handed to ``emit`` (read-only)."""
        return self._offset

    async def run(self, emit: Emit) -> None:
        self._resume()
        self._started = True
        try:
            while True:
                if await self._pump(emit):
                    continue  # more may be waiting: read on before sleeping
                await self._follow(emit)
                await asyncio.sleep(self._config.poll_interval_s)
        finally:
            if self._processed is None:
                self._save()  # with checkpoints, the checkpointer commits instead
            self._close()

    # -- following the checkpoint ------------------------------------------------------

    def capture(self) -> Offset | None:
        """The offset whose lines the engine has fully processed (None: nothing new)."""
        done = self._processed() if self._processed is not None else self._emitted
        found = None
        while self._marks and self._marks[0][0] <= done:
            found = self._marks.popleft()[1]
        return found

    def commit(self, captured: Offset | None) -> None:
        if captured is not None:
            self._write_state(captured)

    def _mark(self) -> None:
        """A batch is complete: remember its offset, or save it (no checkpoints)."""
        if self._processed is None:
            self._save()
            return
        mark = (self._emitted, Offset(self._inode, self._offset))
        if self._marks and self._marks[-1][0] == self._emitted:
            self._marks[-1] = mark  # no event since: the newer offset covers as much
        else:
            self._marks.append(mark)

    # -- starting point ------------------------------------------------------------

    def _resume(self) -> None:
        saved = self._load()
        current = _stat(self._path)
        if saved is None:
            start = current.st_size if current and self._config.start_at == "end" else 0
            self._open(self._path, start)
        elif current and current.st_ino == saved.inode:
            self._open(self._path, saved.offset if saved.offset <= current.st_size else 0)
        elif (old := _find_inode(self._path.parent, saved.inode)) is not None:
            log.info("file_resume_rotated", source=self.name, file=str(old))
            self._open(old, saved.offset)
        else:
            log.warning("file_state_stale", source=self.name, file=str(self._path))
            self._open(self._path, 0)

    def _load(self) -> Offset | None:
        try:
            return msgspec.json.decode(self._state_path.read_bytes(), type=Offset)
        except FileNotFoundError:
            return None
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("file_state_unreadable", source=self.name, error=str(exc))
            return None

    def _save(self) -> None:
        if self._inode:
            self._write_state(Offset(self._inode, self._offset))

    def _write_state(self, offset: Offset) -> None:
        tmp = self._state_path.with_name(self._state_path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(msgspec.json.encode(offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._state_path)  # atomic: a crash leaves the old or the new state

    def _open(self, path: Path, offset: int) -> None:
        self._close()
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - kept open across polls
        except FileNotFoundError:
            self._inode, self._offset = 0, 0
            return
        self._inode = os.fstat(self._file.fileno()).st_ino
        self._offset = offset
        self._file.seek(offset)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- reading -------------------------------------------------------------------

    async def _pump(self, emit: Emit) -> bool:
        """Emit the complete lines of one chunk; True when a full chunk was read."""
        if self._file is None:
            return False
        if self.align is not None:
            await self.align(self.name)
        data = self._file.read(_CHUNK)
        self._at_end = len(data) < _CHUNK
        end = data.rfind(b"\n") + 1
        if end == 0:
            self._file.seek(self._offset)  # no complete line yet: read it again later
            self._maybe_skip_long(len(data))
            return False
        self._file.seek(self._offset + end)
        start = self._offset
        for line in data[:end].splitlines():
            await self._line(emit, line, start)
            start += len(line) + 1
        self._offset += end
        self._mark()
        return len(data) == _CHUNK

    def _maybe_skip_long(self, pending: int) -> None:
        if pending >= self._config.max_line_bytes and self._file is not None:
            # The line has no end in sight: move past what we have, drop it on its newline.
            self._skipping = True
            self._offset += pending
            self._file.seek(self._offset)
            self._mark()

    async def _line(self, emit: Emit, line: bytes, offset: int) -> None:
        if self._skipping:
            self._skipping = False
            self._bad(offset, "line_too_long", "line over max_line_bytes skipped")
            return
        if not line.strip():
            return
        if len(line) > self._config.max_line_bytes:
            self._bad(offset, "line_too_long", "line over max_line_bytes skipped")
            return
        try:
            events = self._parse(line)
        except SkippedInput as exc:
            self._metrics.drops.labels(reason=f"skipped_{exc.reason}").inc()
            return
        except ParseError as exc:
            self._bad(offset, exc.reason, str(exc))
            return
        for event in events:
            await emit(event)
            self._emitted += 1

    def _bad(self, offset: int, reason: str, detail: str) -> None:
        self._metrics.parse_errors.labels(source=self.name, reason=reason).inc()
        log.warning(
            "file_line_rejected", source=self.name, offset=offset, reason=reason, detail=detail
        )

    # -- rotation --------------------------------------------------------------------

    async def _follow(self, emit: Emit) -> None:
        """At EOF: switch files after a rename, rewind after a truncate."""
        current = _stat(self._path)
        if current is None:
            return  # renamed away and not recreated yet: keep the old file open
        if self._file is None or current.st_ino != self._inode:
            await self._finish_old(emit)
            log.info("file_rotated", source=self.name, file=str(self._path), style="rename")
            self._open(self._path, 0)
            self._mark()
            self._metrics.reconnects.labels(source=self.name).inc()
        elif current.st_size < self._offset:
            log.info("file_rotated", source=self.name, file=str(self._path), style="truncate")
            self._open(self._path, 0)
            self._mark()

    async def _finish_old(self, emit: Emit) -> None:
        """The old file is complete: emit everything, a last line without newline too."""
        if self._file is None:
            return
        while await self._pump(emit):
            pass
        tail = self._file.read()
        if tail.strip():
            await self._line(emit, tail, self._offset)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _find_inode(directory: Path, inode: int) -> Path | None:
    """The file in ``directory`` with this inode (where a rotated file went), if any."""
    try:
        entries: Any = os.scandir(directory)
    except OSError:
        return None
    with entries:
        for entry in entries:
            if entry.is_file() and entry.inode() == inode:
                return Path(entry.path)
    return None
