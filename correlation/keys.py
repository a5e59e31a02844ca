"""Join keys and distinct-count values: a name from a rule file → a key function.

A key function returns the *candidate* values an event offers for a join (usually
one). ``actor.workload`` offers several: a pod ``web-5d8f7c-x2x9z`` in namespace
``b`` may belong to the deployment ``web``, the replicaset ``web-5d8f7c`` or be the
pod itself, so it offers ``b/web-5d8f7c-x2x9z``, ``b/web-5d8f7c`` and ``b/web``;
the audit event that created the workload offers ``target.workload`` = ``b/web``,
and the equality join meets in the middle. Empty values never join.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from correlation.event import Event, field_text
from correlation.rules.fields import TUPLE_FIELDS, field_error, getter

KeyFn = Callable[[Event], tuple[str, ...]]
MAX_WORKLOAD_PREFIXES: Final = 6


def _actor_pod(event: Event) -> tuple[str, ...]:
    ref = event.actor.pod_ref
    return (ref,) if ref else ()


def _target_pod(event: Event) -> tuple[str, ...]:
    ref = event.target.pod_ref
    return (ref,) if ref else ()


def _actor_workload(event: Event) -> tuple[str, ...]:
    ns, pod = event.actor.namespace, event.actor.pod
    if not ns or not pod:
        return ()
    out = [f"{ns}/{pod}"]
    name = pod
    while "-" in name and len(out) < MAX_WORKLOAD_PREFIXES:
        name = name.rsplit("-", 1)[0]
        if name:
            out.append(f"{ns}/{name}")
    return tuple(out)


def _target_workload(event: Event) -> tuple[str, ...]:
    ns = event.target.namespace
    name = event.target.pod or field_text(event.fields.get("workload.name", "")) or event.name
    if not name:
        name = field_text(event.fields.get("workload.generate_name", "")).rstrip("-")
    return (f"{ns}/{name}",) if ns and name else ()


def _target_endpoint(event: Event) -> tuple[str, ...]:
    ips = event.target.ips
    if not ips:
        return ()
    return (f"{ips[0]}:{event.target.port}",)


SPECIAL: Final[dict[str, KeyFn]] = {
    "actor.pod": _actor_pod,
    "target.pod": _target_pod,
    "actor.workload": _actor_workload,
    "target.workload": _target_workload,
    "target.endpoint": _target_endpoint,
}


# join keys read off the actor's pod: an event without one (and that the resolver cannot
# give one) offers no key under them (correlation/interest.py rejects it early)
ACTOR_POD_KEYS: Final = frozenset(("actor.pod", "actor.pod_ref", "actor.workload"))

# ``fields`` keys a special key function reads (a buffered event keeps them; compact.py)
SPECIAL_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "target.workload": ("workload.name", "workload.generate_name"),
}


def fields_read(name: str) -> tuple[str, ...]:
    """The ``fields`` keys the key function of ``name`` reads (often none)."""
    if name.startswith("fields."):
        return (name[len("fields.") :],)
    return SPECIAL_FIELDS.get(name, ())


def key_error(name: str) -> str | None:
    """Why ``name`` cannot be a join key, or ``None``."""
    if name in SPECIAL:
        return None
    return field_error(name)


def key_fn(name: str) -> KeyFn:
    """The key function for ``name`` (see the module docstring)."""
    if name in SPECIAL:
        return SPECIAL[name]
    get = getter(name)
    if name in TUPLE_FIELDS:
        return lambda event: tuple(str(v) for v in get(event) if v)

    def single(event: Event) -> tuple[str, ...]:
        value = get(event)
        if isinstance(value, tuple):  # a list-typed Falco field: each element is a candidate
            return tuple(str(v) for v in value if v)
        return (str(value),) if value not in ("", 0, None) else ()

    return single
