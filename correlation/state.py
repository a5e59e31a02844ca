"""Engine configuration, statistics and the snapshot format (all msgspec Structs)."""

from __future__ import annotations

import msgspec

from correlation.allowlist import EMPTY_ALLOWLIST, Allowlist
from correlation.event import Event
from correlation.identity import ResolverState
from correlation.incidents import IncidentState

SECOND = 1_000_000_000


class EngineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Engine limits. Times are nanoseconds of event time."""

    lateness_ns: int = 60 * SECOND  # the audit webhook batches up to 30 s; keep a margin
    max_partials_per_key: int = 256  # buffered step events per rule, step and join key
    max_partials_total: int = 1_000_000
    allowlist: Allowlist = EMPTY_ALLOWLIST
    max_pending: int = 10_000  # container-only Falco alerts waiting for their pod
    max_identities: int = 200_000  # container and IP bindings
    incident_window_ns: int = 3600 * SECOND
    max_incident_entities: int = 100_000


class EngineStats(msgspec.Struct):
    """Counters and gauges; ``evictions`` by reason, ``chains`` by rule id."""

    events: int = 0
    late: int = 0
    suppressed: int = 0
    absorbed: int = 0
    partials: int = 0
    pending: int = 0
    identity_bindings: int = 0
    watermark_ns: int = 0
    evictions: dict[str, int] = {}
    chains: dict[str, int] = {}


class Entry(msgspec.Struct, array_like=True):
    """One buffered step event under one join key."""

    rule: str
    step: int
    key: tuple[str, ...]
    event: Event


class Window(msgspec.Struct, array_like=True):
    """An emitted chain's window, kept to absorb later anchors inside it."""

    rule: str
    key: tuple[str, ...]
    anchor_ns: int
    chain_id: str


class Snapshot(msgspec.Struct, array_like=True):
    """Everything needed to continue after a restart (``Engine.snapshot``)."""

    version: int
    max_seen_ns: int
    entries: list[Entry]
    windows: list[Window]
    pending: list[Event]
    identity: ResolverState
    incidents: IncidentState
    stats: EngineStats
