"""Checkpoint and restore of the correlation engine's state across restarts.

The engine's state (partial matches, identity bindings, incident paths, watermark) is
``Engine.snapshot()`` bytes. :class:`Checkpointer` stores them in one local file,
periodically and on shutdown, and hands them back at start::

    checkpointer = Checkpointer(Path("/var/lib/detector/engine.ckpt"), interval_s=30)
    engine = checkpointer.restore(rules, config)      # or a fresh Engine
    ... group.create_task(checkpointer.run(engine))   # every interval_s
    ... checkpointer.try_save(engine)                 # on shutdown, before any flush

File layout (one file; written whole, never in place)::

    b"LMDCKPT2" | u64 payload length | u32 crc32 of payload | payload
    payload = msgpack [positions {name: int}, snapshot bytes, parts {name: bytes}]

``parts`` is state that lives outside the engine but must travel with it, snapshotted in
the same event-loop step (today ``long_running``: the open long-running requests of
:class:`detector.parse.long_running.LongRunningStages`); see :meth:`Checkpointer.attach`.
``positions`` are the source positions the snapshot covers, written in the same file so
that a crash can never leave one ahead of the other: today the intake log's covered seq
(``intake_log``, see :mod:`detector.delivery.intake_log`). A version-1 file
(``LMDCKPT1``, the bare snapshot, written before positions moved in) still loads, with
no positions; the intake log then reads its old ``covered`` side file once.

Why a temp file + ``fsync`` + ``os.replace`` + directory ``fsync``: after ``kill -9`` or a
power cut the path holds either the previous complete checkpoint or the new complete one,
never a torn mix. The length and CRC catch the rest (a truncated copy, a disk error); a bad
file is moved aside as ``<name>.corrupt``, counted, and the service starts empty rather
than not at all. A snapshot the engine refuses (e.g. written by an incompatible version)
is treated the same way.

``detector run`` wires it (``checkpoint.path``, default ``var/engine.ckpt``): the
supervisor runs :meth:`Checkpointer.run` beside the engine task and calls
:meth:`Checkpointer.try_save` after the queue is drained but before the engine's
``flush()`` — flush emits and *clears* the partial matches a restart must get back.
Saves, failures, size and duration are exported as ``detector_checkpoint_*`` metrics.

The engine is not thread-safe, so ``snapshot()`` runs on the event loop between two
``process()`` calls; only the file write goes to a worker thread.

Source positions follow the checkpoint (:class:`Follower`). A follower with a
``position_key`` (the intake) has its captured position stored *inside* the checkpoint
file and handed back by :attr:`Checkpointer.positions` at start; the others keep their
own file, written after the checkpoint. A file tailer's offset is
captured with the snapshot — the position of the last line whose events the engine has
processed — and written only after that checkpoint is on disk. After ``kill -9`` the
tailer resumes at the checkpointed position, never past it: lines read after the last
checkpoint are read again (at-least-once). The engine drops a re-read event that is still
buffered (same id in the same step and key), and a re-read anchor inside a chain already
emitted is absorbed, so a re-read does not emit a chain twice; a chain whose decision
happened after the checkpoint is decided again with the same id (consumers deduplicate).

Exceptions::

    DetectorError
     └── CheckpointError      the checkpoint file is unreadable or corrupt (``reason``)
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
import structlog

from detector.errors import DetectorError
from detector.metrics import Metrics

MAGIC: Final = b"LMDCKPT2"
MAGIC_V1: Final = b"LMDCKPT1"  # the bare snapshot, no positions (still read)
_HEADER: Final = struct.Struct(">8sQI")
log = structlog.get_logger("detector.checkpoint")


class CheckpointError(DetectorError):
    """The checkpoint file cannot be used; ``reason`` is a metrics label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Stored(msgspec.Struct, array_like=True, frozen=True):
    """What one checkpoint file holds: source positions and the engine snapshot."""

    positions: dict[str, int]
    snapshot: bytes
    parts: dict[str, bytes] = {}  # state kept beside the engine's (:meth:`Checkpointer.attach`)


_stored_decoder: Final = msgspec.msgpack.Decoder(Stored)


class Snapshotable(Protocol):
    def snapshot(self) -> bytes: ...


class Part(Snapshotable, Protocol):
    """State checkpointed beside the engine's (see :meth:`Checkpointer.attach`)."""

    def restore(self, data: bytes) -> None: ...


class Follower(Protocol):
    """A source position that must not run ahead of the checkpoint (a file offset).

    ``capture`` runs with the snapshot (same event-loop step, so it covers exactly the
    events the snapshot holds); ``commit`` runs once that checkpoint is durably written.
    A follower with a string attribute ``position_key`` captures an int, which is stored
    in the checkpoint file under that key (:attr:`Checkpointer.positions` at start).
    """

    def capture(self) -> Any: ...
    def commit(self, captured: Any) -> None: ...


@dataclass
class CheckpointStats:
    """What the last save cost, and how many saves and failures there were."""

    saves: int = 0
    failures: int = 0
    corrupt: int = 0
    last_bytes: int = 0
    last_snapshot_ms: float = 0.0
    last_write_ms: float = 0.0


class Checkpointer:
    """Periodic and on-demand engine checkpoints in one file at ``path``."""

    def __init__(self, path: Path, interval_s: float = 30.0, metrics: Metrics | None = None):
        if interval_s <= 0:
            raise ValueError("checkpoint interval must be > 0 seconds")
        self.path = path
        self.interval_s = interval_s
        self.stats = CheckpointStats()
        self._metrics = metrics
        # A cancelled run() cannot stop its write thread; the shutdown save waits for it
        # here instead of racing it on the same temp file (and then writes the newer state).
        self._write_lock = threading.Lock()
        # Writes in capture order: that thread may also reach the lock only after the newer
        # save (descheduled between its start and the lock); its older state is then
        # skipped, not written over the newer file whose position the intake log has
        # already deleted segments up to.
        self._captures = 0  # checkpoints captured (on the event loop's thread)
        self._on_disk = 0  # the capture the file holds (under the write lock)
        self.followers: list[Follower] = []
        # The positions stored with the snapshot last read (empty: none, or a v1 file).
        self.positions: dict[str, int] = {}
        self._version = 0
        self._parts: dict[str, Part] = {}
        self._stored_parts: dict[str, bytes] = {}  # as read, until attach() takes them

    # --- load ----------------------------------------------------------------------------
    def read(self) -> bytes | None:
        """The stored snapshot, ``None`` if there is none; :class:`CheckpointError` if bad.
        Sets :attr:`positions` to what was stored with it."""
        self.positions = {}
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError("unreadable", f"{self.path}: {exc.strerror}") from None
        stored = unpack(blob)
        self.positions, self._version = stored.positions, _format(blob)
        self._stored_parts = stored.parts
        return stored.snapshot

    def load(self) -> bytes | None:
        """Like :meth:`read`, but a bad file is moved aside, counted and logged: ``None``."""
        try:
            return self.read()
        except CheckpointError as exc:
            self._set_aside(exc.reason, str(exc))
            return None

    @property
    def version(self) -> int:
        """Format of the file last read: 2, 1 (no positions in it) or 0 (none)."""
        return self._version

    def restore(self, rules: Sequence[Any], config: Any, engine_type: Any = None) -> Any:
        """``Engine.restore(rules, config, data)`` from the stored checkpoint, else a new
        ``Engine(rules, config)``. ``engine_type`` defaults to ``correlation.engine.Engine``."""
        if engine_type is None:
            from correlation.engine import Engine

            engine_type = Engine
        data = self.load()
        if data is None:
            return engine_type(rules, config)
        try:
            # no input's progress may come back ahead of this host's clock
            engine = engine_type.restore(rules, config, data, now_ns=time.time_ns())
        except Exception as exc:  # noqa: BLE001 - any refusal means "start empty", not "crash"
            self._set_aside("rejected", f"engine refused the snapshot: {type(exc).__name__}")
            self.positions, self._version = {}, 0  # an empty engine covers nothing
            self._stored_parts = {}
            return engine_type(rules, config)
        log.info("checkpoint_restored", path=str(self.path), bytes=len(data))
        return engine

    def attach(self, name: str, part: Part) -> None:
        """Checkpoint ``part`` with the engine from now on, and give it back what the file
        read at start held under ``name``. A part that refuses its data starts empty
        (logged): it is never worth refusing to start for."""
        self._parts[name] = part
        data = self._stored_parts.pop(name, None)
        if data is None:
            return
        try:
            part.restore(data)
        except Exception as exc:  # noqa: BLE001 - a bad part costs that part only
            log.error("checkpoint_part_refused", part=name, error=type(exc).__name__)

    def _set_aside(self, reason: str, message: str) -> None:
        self.positions, self._version, self._stored_parts = {}, 0, {}
        self.stats.corrupt += 1
        self._failed(reason)
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, aside)
        except OSError:
            aside = self.path
        log.error("checkpoint_unusable", reason=reason, detail=message, kept_as=str(aside))

    # --- save ----------------------------------------------------------------------------
    def save(self, engine: Snapshotable) -> int:
        """Snapshot ``engine`` and store it durably now; returns the payload size."""
        data, marks = self._snapshot(engine), self._capture()
        self._timed_write(self._captures, data, self._positions(marks), self._snapshot_parts())
        self._commit(marks)
        return len(data)

    def try_save(self, engine: Snapshotable) -> bool:
        """:meth:`save`, but a failed write is logged and counted instead of raised (the
        shutdown path must go on to flush and close the sinks)."""
        try:
            self.save(engine)
        except OSError as exc:
            self._write_failed(exc)
            return False
        return True

    async def run(self, engine: Snapshotable) -> None:
        """Checkpoint every ``interval_s`` until cancelled; a failed write is logged and
        retried at the next interval, never fatal."""
        while True:
            await asyncio.sleep(self.interval_s)
            data, marks, parts = self._snapshot(engine), self._capture(), self._snapshot_parts()
            positions, captured = self._positions(marks), self._captures
            try:
                written = await asyncio.to_thread(
                    self._timed_write, captured, data, positions, parts
                )
            except OSError as exc:
                self._write_failed(exc)
                continue
            if written:
                self._commit(marks)

    def _capture(self) -> list[Any]:
        self._captures += 1
        return [follower.capture() for follower in self.followers]

    def _snapshot_parts(self) -> dict[str, bytes]:
        return {name: part.snapshot() for name, part in self._parts.items()}

    def _positions(self, marks: list[Any]) -> dict[str, int]:
        """The captured marks stored in the checkpoint file itself."""
        found = {}
        for follower, mark in zip(self.followers, marks, strict=True):
            key = getattr(follower, "position_key", None)
            if isinstance(key, str):
                found[key] = int(mark)
        return found

    def _commit(self, marks: list[Any]) -> None:
        """Positions follow the checkpoint only once it is on disk."""
        for follower, mark in zip(self.followers, marks, strict=True):
            try:
                follower.commit(mark)
            except OSError as exc:  # the next checkpoint commits again; a restart re-reads
                log.error("checkpoint_commit_failed", error=exc.strerror)

    def _write_failed(self, exc: OSError) -> None:
        self.stats.failures += 1
        self._failed("write")
        log.error("checkpoint_write_failed", path=str(self.path), error=exc.strerror)

    def _failed(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.checkpoint_failures.labels(reason=reason).inc()

    def _snapshot(self, engine: Snapshotable) -> bytes:
        start = time.perf_counter()
        data = engine.snapshot()
        self.stats.last_snapshot_ms = (time.perf_counter() - start) * 1000
        return data

    def _timed_write(
        self,
        captured: int,
        data: bytes,
        positions: dict[str, int],
        parts: dict[str, bytes] | None = None,
    ) -> bool:
        """Write the ``captured``-th checkpoint; False (nothing written) when a later one
        is on disk already."""
        with self._write_lock:
            if captured < self._on_disk:
                return False
            start = time.perf_counter()
            write_atomic(self.path, encode(data, positions, parts))
            self._on_disk = captured
            self._saved(len(data), (time.perf_counter() - start) * 1000)
            return True

    def _saved(self, size: int, write_ms: float) -> None:
        self.stats.last_write_ms = write_ms
        self.stats.saves += 1
        self.stats.last_bytes = size
        if self._metrics is not None:
            self._metrics.checkpoint_saves.inc()
            self._metrics.checkpoint_bytes.set(size)
            seconds = (self.stats.last_snapshot_ms + write_ms) / 1000
            self._metrics.checkpoint_duration.observe(seconds)


def encode(
    snapshot: bytes, positions: dict[str, int] | None = None, parts: dict[str, bytes] | None = None
) -> bytes:
    """A version-2 checkpoint file holding ``snapshot``, ``positions`` and ``parts``."""
    payload = msgspec.msgpack.encode(Stored(dict(positions or {}), snapshot, dict(parts or {})))
    return _frame(MAGIC, payload)


def encode_v1(snapshot: bytes) -> bytes:
    """A version-1 file (the bare snapshot), as releases before positions wrote it."""
    return _frame(MAGIC_V1, snapshot)


def _frame(magic: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


def decode(blob: bytes) -> bytes:
    """The engine snapshot of a checkpoint file; :class:`CheckpointError` when the file
    is not intact."""
    return unpack(blob).snapshot


def unpack(blob: bytes) -> Stored:
    """Snapshot and positions of a version-1 or -2 checkpoint file."""
    if len(blob) < _HEADER.size:
        raise CheckpointError("truncated", f"checkpoint of {len(blob)} bytes has no header")
    magic, length, crc = _HEADER.unpack_from(blob)
    if magic not in (MAGIC, MAGIC_V1):
        raise CheckpointError("bad_magic", "not a detector checkpoint file")
    payload = blob[_HEADER.size :]
    if len(payload) != length:
        raise CheckpointError("truncated", f"payload is {len(payload)} bytes, header says {length}")
    if zlib.crc32(payload) != crc:
        raise CheckpointError("bad_checksum", "checkpoint payload fails its CRC32")
    if magic == MAGIC_V1:
        return Stored({}, payload)
    try:
        return _stored_decoder.decode(payload)
    except msgspec.DecodeError:
        raise CheckpointError(
            "bad_layout", "checkpoint payload is not [positions, snapshot, parts]"
        ) from None


def _format(blob: bytes) -> int:
    return 1 if blob.startswith(MAGIC_V1) else 2


def write_atomic(path: Path, blob: bytes) -> None:
    """Replace ``path`` with ``blob`` so that a crash leaves the old or the new file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Owner-only: a checkpoint holds full events. fchmod, since O_CREAT keeps the mode
    # of a temp file a crashed run left behind; os.replace carries the mode over.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    # The rename itself is durable only once the directory entry is on disk.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
