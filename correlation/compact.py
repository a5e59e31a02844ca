"""The copy of an event a rule buffer keeps: only what is read later, values shared.

A buffered event waits up to a rule's window (minutes) and a live partial match is
mostly its event, so the engine stores a compact copy, made once when the event first
enters a buffer; the ~97% of a stream no step wants never pays for it::

    offered event ──► predicates, join keys (read everything, once)
                 └──► compact copy ──► buffers ──► matcher, chain record, entities

* **Slim.** ``fields`` (Falco's ``output_fields``: ~20 strings, ~2.5 KB) is read by
  predicates and join keys at offer time only. Afterwards two readers remain: a rule's
  ``count.distinct`` (a ``fields.<key>``, or a key function that reads fields — see
  :func:`~correlation.keys.fields_read`) and :func:`~correlation.event.describe`, which
  falls back to ``request_uri`` for an audit event without a resource and names the
  real user of an impersonated one (``impersonated_by``, also an entity). The copy keeps
  exactly those keys; every other attribute is kept.
* **Shared.** msgspec decodes fresh strings for every line, yet verbs, resources, rule
  names, tag tuples, namespaces, pods, nodes, users and whole actor/target identities
  repeat across events. The copy takes each value from a table holding one instance per
  value, so buffered events share them. Event ids and times are unique and not shared.
  The engine also passes join keys through :meth:`Compactor.share`, so a bucket, its
  expiry-heap entries and its windows hold one key tuple.

The table belongs to one engine (no global state), holds at most ``max_entries`` values
and is cleared when full (shared values stay shared; new ones refill it) and by
``Engine.flush``. Values whose events have expired stay until then: over the 1e6-event
bench stream the table reached ~9k values, ~0.4 MB beyond what live events reference.
Interning never changes a value, so snapshots and chain records are the same with or
without it (the snapshot does not carry the table).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

from correlation.event import (
    EMPTY_IDENTITY,
    IMPERSONATED_BY,
    K8S_AUDIT,
    Event,
    FieldText,
    Identity,
)

__all__ = ["MAX_ENTRIES", "Compactor"]

MAX_ENTRIES: Final = 65_536
DESCRIBE_FIELDS: Final = frozenset({"request_uri"})  # describe() of a resource-less audit event
AUDIT_FIELDS: Final = frozenset({IMPERSONATED_BY})  # describe() and entities, every audit event
T = TypeVar("T")
# the order Event's fields are given positionally in Compactor.compact
FIELD_ORDER: Final = (
    "time_ns", "source", "id", "summary", "rule", "priority", "tags", "verb", "resource",
    "subresource", "name", "response_code", "decision", "stage", "actor", "target", "fields",
)  # fmt: skip


class Compactor:
    """Makes compact copies of events for one engine (see the module docstring)."""

    __slots__ = ("_table", "_max", "_keep", "_keep_audit", "_keep_resource")

    def __init__(self, keep_fields: Iterable[str] = (), max_entries: int = MAX_ENTRIES) -> None:
        self._table: dict[Any, Any] = {}
        self._max = max_entries
        self._keep = frozenset(keep_fields)
        self._keep_resource = self._keep | AUDIT_FIELDS
        self._keep_audit = self._keep_resource | DESCRIBE_FIELDS

    @property
    def size(self) -> int:
        """Values in the table."""
        return len(self._table)

    def clear(self) -> None:
        self._table.clear()

    def compact(self, event: Event) -> Event:
        """A copy of ``event`` with ``fields`` slimmed and repeated values shared."""
        # the short categorical values go through the table as one tuple: one lookup
        kind = self._strings(
            (event.source, event.rule, event.priority, event.verb, event.resource,
             event.subresource, event.decision, event.stage)
        )  # fmt: skip
        source, rule, priority, verb, resource, subresource, decision, stage = kind
        share = self.share
        # positional: a third of the keyword call's cost (FIELD_ORDER is pinned by a test)
        return Event(
            event.time_ns, source, event.id, share(event.summary), rule, priority,
            self._strings(event.tags), verb, resource, subresource, share(event.name),
            event.response_code, decision, stage, self._identity(event.actor),
            self._identity(event.target), self._fields(event),
        )  # fmt: skip

    def share(self, value: T) -> T:
        """The table's instance equal to ``value`` (``value`` itself when new)."""
        table = self._table
        found = table.get(value)
        if found is not None:
            return found  # type: ignore[no-any-return]
        if len(table) >= self._max:
            table.clear()  # bounded; the working set refills quickly
        table[value] = value
        return value

    def _strings(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            return ()
        found = self._table.get(values)
        if found is not None:
            return found  # type: ignore[no-any-return]
        return self.share(tuple(self.share(v) for v in values))

    def _identity(self, identity: Identity) -> Identity:
        if identity == EMPTY_IDENTITY:
            return EMPTY_IDENTITY
        found = self._table.get(identity)
        if found is not None:
            return found  # type: ignore[no-any-return]
        share = self.share
        copy = Identity(
            cluster=share(identity.cluster),
            namespace=share(identity.namespace),
            pod=share(identity.pod),
            pod_uid=share(identity.pod_uid),
            container_id=share(identity.container_id),
            service_account=share(identity.service_account),
            node=share(identity.node),
            user=share(identity.user),
            image=share(identity.image),
            ips=self._strings(identity.ips),
            port=identity.port,
        )
        return share(copy)

    def _fields(self, event: Event) -> dict[str, FieldText]:
        keep = self._keep
        if event.source == K8S_AUDIT:
            keep = self._keep_resource if event.resource else self._keep_audit
        if not keep or not event.fields:
            return {}
        share = self.share
        return {k: share(v) for k, v in event.fields.items() if k in keep}
