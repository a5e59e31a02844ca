"""The incident store: every published chain, its evidence and its incident, in SQLite.

The outbox forgets a record once every sink has it; this store keeps it for the analyst
(``/incidents`` pages, ``detector incidents``, ``detector show``). Tables::

    chains    id (chain id) · incident · rule · severity (rank) · first_ns · last_ns
              · stored (wall s) · bytes · record (chain record v1 JSON)
    entities  kind · value · chain            pods, service_accounts, namespaces, nodes
    evidence  chain · ordinal · event_id · time_ns · step · event (normalized Event JSON)
    merged    id · into                       incidents shown as another one (see below)

Bounds: chains stored more than ``max_age_s`` ago, then the oldest beyond ``max_bytes``
(record + evidence bytes) are deleted with their rows, after every insert; an
incident disappears with its last chain. ``bytes`` is summed in SQL, never by file size,
so the bound is exact and independent of SQLite's page reuse.

Merging: the engine stitches a chain that bridges two incidents into the older one, but
records already published keep the id they had. When a new chain's incident path shares
a pod with another stored incident whose last evidence is within ``merge_window_s``, the
other is recorded as merged into it, and every query answers with the surviving id.

Not thread-safe: :class:`detector.incidents.service.IncidentService` runs every call on
one worker thread; CLI commands open their own read connection (WAL lets them read while
the service writes). The file holds chain records and raw evidence, so it is created with
mode 0o600, like the outbox.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson

from correlation.chain import severity_rank
from correlation.event import Event
from detector.incidents.query import Query, parse_rfc3339_ns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chains (
    id TEXT PRIMARY KEY, incident TEXT NOT NULL, rule TEXT NOT NULL, severity INTEGER NOT NULL,
    first_ns INTEGER NOT NULL, last_ns INTEGER NOT NULL, stored REAL NOT NULL,
    bytes INTEGER NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chains_incident ON chains (incident);
CREATE INDEX IF NOT EXISTS chains_stored ON chains (stored);
CREATE TABLE IF NOT EXISTS entities (
    kind TEXT NOT NULL, value TEXT NOT NULL, chain TEXT NOT NULL,
    PRIMARY KEY (kind, value, chain)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entities_chain ON entities (chain);
CREATE TABLE IF NOT EXISTS evidence (
    chain TEXT NOT NULL, ordinal INTEGER NOT NULL, event_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL, step TEXT NOT NULL, event BLOB NOT NULL,
    PRIMARY KEY (chain, ordinal)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merged (id TEXT PRIMARY KEY, into_id TEXT NOT NULL) WITHOUT ROWID;
"""
_ENTITY_KINDS = ("pods", "service_accounts", "namespaces", "nodes")
_encode_event = msgspec.json.Encoder().encode


class StoredEvidence(msgspec.Struct, frozen=True):
    """One evidence row: which chain and step it served, and the normalized event."""

    chain: str
    step: str
    event_id: str
    time_ns: int
    event: Event


class IncidentRows(msgspec.Struct, frozen=True):
    """Everything stored about one incident: its chain records and their evidence."""

    id: str
    records: list[dict[str, Any]]
    evidence: list[StoredEvidence]


class IncidentStore:
    """Chains and incidents on disk, bounded by age and size."""

    def __init__(
        self,
        path: Path,
        max_age_s: float,
        max_bytes: int,
        merge_window_s: float = 3600.0,
        now: Callable[[], float] = time.time,
        readonly: bool = False,
        on_prune: Callable[[str, int], None] = lambda reason, count: None,
    ) -> None:
        """``on_prune(reason, count)``: chains deleted by a bound (``age`` or ``size``)."""
        self.path, self.max_age_s, self.max_bytes = path, max_age_s, max_bytes
        self._merge_ns = int(merge_window_s * 1e9)
        self._now, self._on_prune = now, on_prune
        self.pruned = 0  # chains deleted by the bounds since open
        self._db = _connect(path, readonly)

    def close(self) -> None:
        self._db.close()

    def add(self, record: dict[str, Any], events: Sequence[Event]) -> str:
        """Store one chain record and its evidence events (in step order); idempotent on
        the chain id. Returns the id its incident is shown under."""
        body = orjson.dumps(record)
        rows = [
            _evidence_row(record["id"], i, s, e) for i, (s, e) in enumerate(_steps(record, events))
        ]
        size = len(body) + sum(len(r[-1]) for r in rows)
        first, last = parse_rfc3339_ns(record["first_seen"]), parse_rfc3339_ns(record["last_seen"])
        with self._db:
            self._db.execute("DELETE FROM evidence WHERE chain = ?", (record["id"],))
            self._db.execute("DELETE FROM entities WHERE chain = ?", (record["id"],))
            self._db.execute(
                "INSERT OR REPLACE INTO chains VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record["id"], record["incident"], record["rule"],
                 severity_rank(record["severity"]), first, last, self._now(), size, body),
            )  # fmt: skip
            self._db.executemany("INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.executemany(
                "INSERT OR IGNORE INTO entities VALUES (?, ?, ?)", _entity_rows(record)
            )
            survivor = self._merge(record, first)
            self._prune()
        return survivor

    def incidents(self, query: Query) -> list[IncidentRows]:
        """The incidents any of whose chains match ``query``, most recent first."""
        where, params = query.sql()
        found = self._db.execute(f"SELECT DISTINCT incident FROM chains c WHERE {where}", params)  # noqa: S608 - clauses are ours, values bound
        resolve = self._resolver()
        ids = {resolve(row[0]) for row in found}
        incidents = [rows for rows in (self.incident(i, resolve) for i in ids) if rows]
        incidents.sort(key=lambda rows: max(r["last_seen"] for r in rows.records), reverse=True)
        return incidents[: query.limit]

    def incident(
        self, incident_id: str, resolve: Callable[[str], str] | None = None
    ) -> IncidentRows | None:
        """One incident (asked for by any id it was published under), or None."""
        resolve = resolve or self._resolver()
        survivor = resolve(incident_id)
        members = [i for i in self._incident_ids() if resolve(i) == survivor]
        marks = ",".join("?" * len(members))
        records = [
            orjson.loads(row[0])
            for row in self._db.execute(
                f"SELECT record FROM chains WHERE incident IN ({marks}) ORDER BY first_ns, id",  # noqa: S608 - placeholders only
                members,
            )
        ]
        if not records:
            return None
        return IncidentRows(survivor, records, self._evidence([r["id"] for r in records]))

    def incident_of(self, some_id: str) -> IncidentRows | None:
        """The incident of a chain id, or the incident of that id."""
        row = self._db.execute("SELECT incident FROM chains WHERE id = ?", (some_id,)).fetchone()
        return self.incident(row[0] if row else some_id)

    def chain_ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT id FROM chains ORDER BY id")]

    def stored_bytes(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM chains").fetchone()[0])

    def _evidence(self, chains: list[str]) -> list[StoredEvidence]:
        marks = ",".join("?" * len(chains))
        rows = self._db.execute(
            "SELECT chain, step, event_id, time_ns, event FROM evidence "  # noqa: S608 - placeholders only
            f"WHERE chain IN ({marks}) ORDER BY time_ns, event_id, chain",
            chains,
        )
        decode = msgspec.json.Decoder(Event).decode
        return [StoredEvidence(c, s, i, t, decode(e)) for c, s, i, t, e in rows]

    def _incident_ids(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT incident FROM chains")]

    def _resolver(self) -> Callable[[str], str]:
        into = dict(self._db.execute("SELECT id, into_id FROM merged").fetchall())

        def resolve(incident: str) -> str:
            seen = {incident}
            while incident in into and into[incident] not in seen:  # a cycle cannot loop
                incident = into[incident]
                seen.add(incident)
            return incident

        return resolve

    def _merge(self, record: dict[str, Any], first_ns: int) -> str:
        resolve = self._resolver()
        survivor = resolve(record["incident"])
        pods = [p for p in record.get("path", []) if p]
        if not pods:
            return survivor
        marks = ",".join("?" * len(pods))
        others = self._db.execute(
            "SELECT DISTINCT c.incident FROM entities e JOIN chains c ON c.id = e.chain "  # noqa: S608 - placeholders only
            f"WHERE e.kind = 'pods' AND e.value IN ({marks}) AND c.last_ns >= ?",
            [*pods, first_ns - self._merge_ns],
        )
        for (other,) in others.fetchall():
            if resolve(other) != survivor:
                self._db.execute(
                    "INSERT OR REPLACE INTO merged VALUES (?, ?)", (resolve(other), survivor)
                )
        return survivor

    def _prune(self) -> None:
        cutoff = self._now() - self.max_age_s
        old = [
            row[0] for row in self._db.execute("SELECT id FROM chains WHERE stored < ?", (cutoff,))
        ]
        total = self.stored_bytes() - self._bytes_of(old)
        doomed = list(old)
        if total > self.max_bytes:
            for chain, size in self._db.execute(
                "SELECT id, bytes FROM chains WHERE stored >= ? ORDER BY stored, id", (cutoff,)
            ):
                if total <= self.max_bytes:
                    break
                doomed.append(chain)
                total -= size
        self._delete(doomed)
        for reason, count in (("age", len(old)), ("size", len(doomed) - len(old))):
            if count:
                self._on_prune(reason, count)

    def _bytes_of(self, chains: Iterable[str]) -> int:
        sizes = (
            self._db.execute("SELECT bytes FROM chains WHERE id = ?", (c,)).fetchone()
            for c in chains
        )
        return sum(int(row[0]) for row in sizes if row)

    def _delete(self, chains: list[str]) -> None:
        for table, column in (("chains", "id"), ("entities", "chain"), ("evidence", "chain")):
            self._db.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(c,) for c in chains])  # noqa: S608 - fixed names
        if chains:
            self._db.execute(
                "DELETE FROM merged WHERE id NOT IN (SELECT incident FROM chains) "
                "AND into_id NOT IN (SELECT incident FROM chains)"
            )
        self.pruned += len(chains)


def _steps(record: dict[str, Any], events: Sequence[Event]) -> list[tuple[str, Event]]:
    steps = record["steps"]
    if len(steps) != len(events):
        raise ValueError(f"chain {record['id']}: {len(steps)} steps but {len(events)} events")
    return [(str(step["step"]), event) for step, event in zip(steps, events, strict=True)]


def _evidence_row(chain: str, ordinal: int, step: str, event: Event) -> tuple[Any, ...]:
    return (chain, ordinal, event.id, event.time_ns, step, _encode_event(event))


def _entity_rows(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    entities = record.get("entities", {})
    return [(kind, str(v), record["id"]) for kind in _ENTITY_KINDS for v in entities.get(kind, [])]


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise FileNotFoundError(f"no incident store at {path}")
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # tighten a file created earlier with a looser mode
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db
