"""Engine state to msgpack bytes and back (``Engine.snapshot`` / ``Engine.restore``).

The snapshot (:class:`~correlation.state.Snapshot`) is a flat list of buffered step
events and emitted windows, each naming its rule by id rather than by position, so a
restart with changed rule files keeps what still applies and counts what does not
(``restore_unknown_rule``). Held container-only alerts, identity bindings, incidents,
each input's progress (:class:`~correlation.watermarks.InputState`), the global
watermark, the receiving clock and the counters travel too. Version
:data:`SNAPSHOT_VERSION`; a version-1 snapshot (one watermark, no inputs) still loads,
its progress becoming the default input's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, Protocol

import msgspec

from correlation.errors import SnapshotError
from correlation.event import Event
from correlation.identity import ResolverState
from correlation.incidents import IncidentState
from correlation.rules.model import ChainRule
from correlation.state import EngineStats, Entry, Snapshot, Window
from correlation.watermarks import UNSEEN, InputState

SNAPSHOT_VERSION: Final = 2
Key = tuple[str, ...]


class Buffers(Protocol):
    """What a snapshot reads of one rule's state (the engine's ``RuleState``)."""

    rule: ChainRule
    steps: list[dict[Key, list[Event]]]
    windows: dict[Key, list[tuple[int, str]]]


class _Version(msgspec.Struct, array_like=True):
    version: int  # the first element of every snapshot (later ones are ignored here)


class _SnapshotV1(msgspec.Struct, array_like=True):
    """The layout before per-input progress (one max event time for everything)."""

    version: int
    max_seen_ns: int
    entries: list[Entry]
    windows: list[Window]
    pending: list[Event]
    identity: ResolverState
    incidents: IncidentState
    stats: EngineStats


def encode(
    clock_ns: int,
    watermark_ns: int,
    inputs: list[InputState],
    states: Sequence[Buffers],
    pending: list[Event],
    identity: ResolverState,
    incidents: IncidentState,
    stats: EngineStats,
) -> bytes:
    """The engine's state as msgpack bytes."""
    snap = Snapshot(
        SNAPSHOT_VERSION,
        clock_ns,
        watermark_ns,
        inputs,
        list(_entries(states)),
        list(_windows(states)),
        pending,
        identity,
        incidents,
        stats,
    )
    return msgspec.msgpack.encode(snap)


def decode(data: bytes) -> Snapshot:
    """Snapshot bytes back to a :class:`Snapshot`; :class:`SnapshotError` when unusable."""
    try:
        if msgspec.msgpack.decode(data, type=_Version).version == 1:
            return _from_v1(msgspec.msgpack.decode(data, type=_SnapshotV1))
        snap = msgspec.msgpack.decode(data, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"invalid engine snapshot: {exc}") from exc
    if snap.version != SNAPSHOT_VERSION:
        raise SnapshotError(f"unsupported snapshot version {snap.version}")
    return snap


def _from_v1(old: _SnapshotV1) -> Snapshot:
    """A version-1 snapshot: its one progress becomes the default input's ("")."""
    progress = InputState("", pushed=False, disorder_ns=0, max_seen_ns=old.max_seen_ns)
    return Snapshot(
        SNAPSHOT_VERSION, 0, UNSEEN, [progress], old.entries, old.windows,
        old.pending, old.identity, old.incidents, old.stats,
    )  # fmt: skip


def _entries(states: Sequence[Buffers]) -> Iterator[Entry]:
    for state in states:
        for step_no, steps in enumerate(state.steps):
            for key, bucket in steps.items():
                for event in bucket:
                    yield Entry(state.rule.id, step_no, key, event)


def _windows(states: Sequence[Buffers]) -> Iterator[Window]:
    for state in states:
        for key, items in state.windows.items():
            for anchor_ns, chain_id in items:
                yield Window(state.rule.id, key, anchor_ns, chain_id)
