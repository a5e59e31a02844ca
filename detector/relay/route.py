"""Partition keys that keep every chain on one partition, and the node relay's resolver.

Every join value a rule uses is ``namespace/…`` (``actor.pod``, ``target.pod``,
``actor.workload``, ``target.workload``), so the namespace is a correct partition key
as long as each event goes to the namespace of **every** join value it offers
(docs/scale-out.md has the measurement)::

    event                                               key(s)
    Falco alert with pod fields (or resolved here)      the pod's namespace
    Falco alert with a container id only                node:<name>  (resolution failed)
    audit, service account                              the account's namespace
    audit, any other user                               the target namespace
    audit create of a workload, pods/exec|attach,       the home key above AND the
      into another namespace                            target namespace

The last row is what keeps ``workload-pivot`` (created in B by A's account, activity
in B) and ``exec-pivot`` (exec from A into Q in B) together: their first step joins on
the *target*, their later steps on the actor in B. The resources are those of the
shipped signals ``workload-create`` and ``pod-exec`` (a test pins the two lists
together). A copy never yields a second chain: chain ids are a function of rule, join
key and anchor, and the engine drops the same event twice under one key.

Falco alerts from upstream rules often carry only ``container.id``. Only the node
relay sees every alert of its node, so it resolves container → pod here
(:class:`ContainerResolver`, the engine's own :class:`~correlation.identity.Resolver`
and :class:`~correlation.held.HeldAlerts`): an alert whose pod is not yet known waits
at most ``hold_s`` for a teacher (an alert of the same container with pod fields),
then goes on unresolved, keyed by node.
"""

from __future__ import annotations

from typing import Final

from correlation.event import FALCO, Event
from correlation.held import HeldAlerts, must_hold
from correlation.identity import Resolver

WORKLOAD_RESOURCES: Final = frozenset(
    {"pods", "jobs", "cronjobs", "daemonsets", "deployments", "replicasets", "statefulsets"}
)
EXEC_SUBRESOURCES: Final = frozenset({"exec", "attach"})
CLUSTER_KEY: Final = "cluster"


def home_key(event: Event) -> str:
    """The key of the identity the event is about (see the module docstring)."""
    actor = event.actor
    if event.source == FALCO:
        if actor.namespace:
            return actor.namespace
        return f"node:{actor.node}" if actor.node else CLUSTER_KEY
    if actor.service_account and actor.namespace:
        return actor.namespace
    return event.target.namespace or actor.namespace or CLUSTER_KEY


def reaches_into(event: Event) -> bool:
    """An audit request whose target side is joined on by a later step in its namespace."""
    if event.source == FALCO:
        return False
    if event.resource == "pods" and event.subresource in EXEC_SUBRESOURCES:
        return True
    return event.verb == "create" and event.resource in WORKLOAD_RESOURCES and not event.subresource


def partition_keys(event: Event) -> tuple[str, ...]:
    """Every key the event must be sent under: one, or two for a reach into another namespace."""
    home = home_key(event)
    target = event.target.namespace
    if target and target != home and reaches_into(event):
        return (home, target)
    return (home,)


class ContainerResolver:
    """The node relay's container → pod resolution, with a bounded hold.

    ``admit`` takes each alert in arrival order and returns what may go on now;
    ``expired`` returns held alerts whose hold is over. Progress is the newest event
    time seen, so an alert waits ``hold_s`` of *event* time; the relay also passes a
    clock-based progress when its input goes quiet (see :mod:`.worker`).
    """

    def __init__(self, hold_s: float, max_held: int, max_bindings: int) -> None:
        self.hold_s = hold_s
        hold_ns = int(hold_s * 1e9)
        self._resolver = Resolver(max_bindings, hold_ns)
        self._held = HeldAlerts(max_held, hold_ns)
        self.newest_ns = 0
        self.resolved = 0
        self.unresolved = 0

    @property
    def holding(self) -> int:
        """Alerts waiting for their pod."""
        return self._held.count

    @property
    def oldest_held_ns(self) -> int | None:
        """Event time of the oldest alert waiting (None when none waits)."""
        return self._held.oldest_ns

    def admit(self, event: Event) -> list[Event]:
        """The events that may be forwarded now because ``event`` arrived."""
        if event.source != FALCO:
            return [event]
        self.newest_ns = max(self.newest_ns, event.time_ns)
        resolved = self._resolver.resolve(event)
        if resolved is not event:
            self.resolved += 1
            return [resolved]
        if must_hold(event):
            evicted = self._held.hold(event)
            return self._gave_up([evicted] if evicted is not None else [])
        self._resolver.learn(event)
        released = self._held.release(event, self._resolver)
        self.resolved += len(released)
        return [event, *released]

    def expired(self, progress_ns: int) -> list[Event]:
        """Held alerts whose hold ended by ``progress_ns`` (event time), unresolved."""
        return self._gave_up(self._held.expired(progress_ns))

    def drain(self) -> list[Event]:
        """Everything still held (shutdown), unresolved."""
        return self._gave_up(self._held.drain())

    def _gave_up(self, events: list[Event]) -> list[Event]:
        self.unresolved += len(events)
        return events
