"""Field access for predicates: a field name from a rule file → a fast getter.

Rule files name normalized :class:`~correlation.event.Event` fields: the top-level
ones (``source``, ``rule``, ``tags``, ``verb`` ...), identity fields as
``actor.<name>`` / ``target.<name>``, and Falco output fields as ``fields.<key>``
(``fields.proc.name``). Getters are built once; ``attrgetter`` runs in C.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

from correlation.event import Event, Identity, describe

Getter = Callable[[Event], Any]

TOP_FIELDS: Final = frozenset(
    {
        "source", "id", "summary", "rule", "priority", "tags", "verb", "resource",
        "subresource", "name", "response_code", "decision", "stage",
    }
)  # fmt: skip
IDENTITY_FIELDS: Final = frozenset(Identity.__struct_fields__) | {"pod_ref"}
# Fields whose value is a tuple: predicates test "any element matches".
TUPLE_FIELDS: Final = frozenset({"tags", "actor.ips", "target.ips"})
NUMERIC_FIELDS: Final = frozenset({"response_code", "actor.port", "target.port"})


def field_error(name: str) -> str | None:
    """Why ``name`` is not a field, or ``None`` when it is one."""
    if name in TOP_FIELDS:
        return None
    head, _, rest = name.partition(".")
    if head in ("actor", "target") and rest in IDENTITY_FIELDS:
        return None
    if head == "fields" and rest:
        return None
    return f"unknown field {name!r} (use an Event field, actor.<x>, target.<x> or fields.<key>)"


def getter(name: str) -> Getter:
    """A function returning the value of field ``name`` of an event (``""`` when absent)."""
    if name.startswith("fields."):
        key = name[len("fields.") :]
        return lambda event: event.fields.get(key, "")
    if name == "summary":
        return describe  # audit summaries are built on demand (see correlation/event.py)
    return attrgetter(name)
