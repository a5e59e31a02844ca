"""The one normalized event type that crosses every boundary.

A Falco alert and a Kubernetes audit event both become an :class:`Event`:
when it happened (event time, ns since the epoch, UTC), where it came from,
a stable id, what happened, who did it (``actor``) and to what (``target``).

Field conventions (every later component relies on them):

* ``source`` is ``"falco"`` or ``"k8s_audit"`` (see :data:`FALCO`, :data:`K8S_AUDIT`).
* ``id``: audit ``"<auditID>/<stage>"`` (every responding stage of a long-running request
  — watch, exec, attach, port-forward — is ``"<auditID>/ResponseStarted"``: one event,
  see ``detector/parse/long_running.py``); Falco: Falcosidekick's ``uuid`` when present,
  else ``"falco-" + hash of the alert's content`` (Falco's JSON has no id).
* Falco alerts: ``rule``, ``priority`` (lower case), ``tags``; ``actor`` is the pod the
  process runs in (namespace, pod, container_id, image, user = Linux user name);
  ``target.ips``/``target.port`` the remote end of a network event; ``fields`` keeps the
  alert's ``output_fields`` as strings (``proc.name``, ``fd.sip``, ``fd.name`` ...), and the
  list-typed ones Falco writes as JSON arrays (``k8s.pod.labels``, ``container.image.digest``,
  ``ka.req.pod.containers.image`` ...) as tuples of strings (:data:`FieldText`; predicates
  match any element, :func:`field_text` joins them for display).
* Audit events: ``verb``, ``resource``, ``subresource``, ``name`` (objectRef.name),
  ``response_code``, ``decision`` (``allow``/``forbid``/``""``), ``stage``; ``actor`` is the
  requester (user = username, service_account = ``"NS:SA"``, namespace = the SA's home
  namespace, pod/pod_uid/node from the bound-token extras, ips = sourceIPs with the
  API server's own view, the last entry, first). For an impersonated request the actor
  is the impersonated identity (no pod claims) and ``fields["impersonated_by"]`` the
  real user. ``target.namespace`` is
  objectRef.namespace and ``target.pod`` the pod name for ``pods`` resources.
* An empty ``id`` marks a *time-only tick* (:func:`time_only`): an event the parser
  found no rule step or identity binding can use (``correlation/interest.py``), passed
  on with its time and source only so that event time still advances.
* A :class:`Claim` is not an Event but stands for one: an audit request made with a
  pod's bound token that no step can want unless its source IP is foreign, passed on
  undecoded beyond what the engine needs to decide that (``Engine.claimed``).
* ``summary`` is a one-line human description used in chain steps. Audit parsers leave it
  empty: :func:`describe` builds it from the other fields when an event becomes evidence,
  so the ~97% of audit events that are noise never pay for string formatting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import msgspec

SUMMARY_MAX: Final = 1024  # the parsers' field limit; longer summaries end in "…"
FALCO: Final = "falco"
K8S_AUDIT: Final = "k8s_audit"
SOURCES: Final = (FALCO, K8S_AUDIT)
# A kept field value: a string, or the strings of a list-typed Falco field.
FieldText = str | tuple[str, ...]
# audit ``fields`` key: the real user of an impersonated request (``actor`` is the
# impersonated identity, the one the API server authorized)
IMPERSONATED_BY: Final = "impersonated_by"


class Identity(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """Who or what: a pod, a container, a service account, a user, addresses."""

    cluster: str = ""
    namespace: str = ""
    pod: str = ""
    pod_uid: str = ""
    container_id: str = ""
    service_account: str = ""  # "NS:NAME", only for service-account identities
    node: str = ""
    user: str = ""
    image: str = ""
    ips: tuple[str, ...] = ()
    port: int = 0

    @property
    def pod_ref(self) -> str:
        """``"ns/name"`` when both are known, else ``""``."""
        return f"{self.namespace}/{self.pod}" if self.namespace and self.pod else ""


EMPTY_IDENTITY: Final = Identity()


class Event(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One normalized event. Immutable; ``gc=False`` keeps retained events out of the cyclic GC."""

    time_ns: int
    source: str
    id: str
    summary: str = ""
    # Falco side
    rule: str = ""
    priority: str = ""
    tags: tuple[str, ...] = ()
    # audit side
    verb: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    response_code: int = 0
    decision: str = ""
    stage: str = ""
    # who and to what
    actor: Identity = EMPTY_IDENTITY
    target: Identity = EMPTY_IDENTITY
    # trimmed raw payload: Falco output_fields as strings (tuples for lists), selected audit fields
    # (a Mapping, read-only by contract: parsers build dicts of str or of FieldText alike)
    fields: Mapping[str, FieldText] = msgspec.field(default_factory=dict)


def field_text(value: FieldText) -> str:
    """A field value as one string: the elements of a list-typed field joined with ``", "``."""
    return value if isinstance(value, str) else ", ".join(value)


def time_only(time_ns: int, source: str) -> Event:
    """A time-only tick: an event nothing can use, reduced to its event time and source."""
    return Event(time_ns, source, "")


class Claim(msgspec.Struct, frozen=True, gc=False):
    """An audit request made with a pod's bound token, not (yet) normalized.

    The parser found that no step but a foreign-source-IP one may want it (a pod using
    its own token, the bulk of a cluster's API traffic), yet whether it matters depends
    on engine state at the time it is processed: the resolver may learn its IP from it,
    and a foreign-IP step may want it if its IP belongs to another pod by then.
    :meth:`correlation.engine.Engine.claimed` decides from the fields here and builds
    the full Event (``build(doc)``) only when it matters; otherwise the claim has the
    effect of a time-only tick. ``pod_ref`` and ``ip`` are exactly the ``actor.pod_ref``
    and ``actor.ips[0]`` (or ``""``) of the Event ``build(doc)`` returns.
    """

    source: ClassVar[str] = K8S_AUDIT
    time_ns: int
    pod_ref: str
    ip: str
    foreign: bool  # some foreign-source-IP step may want it (correlation/interest.py)
    doc: Any  # what ``build`` builds the Event from (the parsers: the event's JSON)
    build: Callable[[Any], Event]
    # a long-running request's: the Event's id and stage, which its stages fold by
    # (detector/parse/long_running.py); "" for any other
    fold: str = ""
    stage: str = ""

    def event(self) -> Event:
        """The normalized Event this claim stands for."""
        return self.build(self.doc)


# What sources pass to the engine: an Event (or a time-only tick), or a Claim.
Incoming = Event | Claim


def describe(event: Event) -> str:
    """The event's one-line summary: ``summary`` when set, else built from its fields.

    For an audit event: ``<user> <verb> <resource[/sub]> <ns/name> -> <code>``, with the
    request path standing in for a missing resource (non-resource URLs like ``/healthz``).
    An impersonated request names both: ``admin as a:sa list secrets b -> 403``.
    """
    if event.summary or event.source != K8S_AUDIT:
        return event.summary
    resource = event.resource
    if event.subresource:
        resource = f"{resource}/{event.subresource}"
    namespace, name = event.target.namespace, event.target.pod or event.name
    obj = f"{namespace}/{name}" if namespace and name else namespace or name
    resource = resource or field_text(event.fields.get("request_uri", ""))
    what = " ".join([part for part in (event.verb, resource, obj) if part])
    text = f"{_who(event)} {what} -> {event.response_code}"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _who(event: Event) -> str:
    actor = event.actor
    real = field_text(event.fields.get(IMPERSONATED_BY, ""))
    if real:
        return f"{real} as {actor.service_account or actor.user}"
    return actor.user or "anonymous"
