"""Engine state to msgpack bytes and back (``Engine.snapshot`` / ``Engine.restore``).

The snapshot (:class:`~correlation.state.Snapshot`) is a flat list of buffered step
events and emitted windows, each naming its rule by id rather than by position, so a
restart with changed rule files keeps what still applies and counts what does not
(``restore_unknown_rule``). Held container-only alerts, identity bindings, incidents,
the watermark and the counters travel too. Version :data:`SNAPSHOT_VERSION`.
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

SNAPSHOT_VERSION: Final = 1
Key = tuple[str, ...]


class Buffers(Protocol):
    """What a snapshot reads of one rule's state (the engine's ``RuleState``)."""

    rule: ChainRule
    steps: list[dict[Key, list[Event]]]
    windows: dict[Key, list[tuple[int, str]]]


def encode(
    max_seen_ns: int,
    states: Sequence[Buffers],
    pending: list[Event],
    identity: ResolverState,
    incidents: IncidentState,
    stats: EngineStats,
) -> bytes:
    """The engine's state as msgpack bytes."""
    snap = Snapshot(
        SNAPSHOT_VERSION,
        max_seen_ns,
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
        snap = msgspec.msgpack.decode(data, type=Snapshot)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"invalid engine snapshot: {exc}") from exc
    if snap.version != SNAPSHOT_VERSION:
        raise SnapshotError(f"unsupported snapshot version {snap.version}")
    return snap


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
