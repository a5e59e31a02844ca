"""Test doubles shipped with the library: event builders, a list source and sink.

Other packages' tests use these to build normalized events with sensible defaults
instead of hand-writing every field::

    falco_event("LMD Network Scanner Launched in Pod", t=0, pod="web", tags=("T1046",))
    audit_event("list", "secrets", t=60, sa="shop:web", pod="web", namespace="payments")

Times are seconds (int or float) since :data:`T0`; ids are derived from the content
unless given, so the same call always builds the same event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Final

from correlation.chain import Chain
from correlation.engine import Engine
from correlation.event import FALCO, K8S_AUDIT, Event, FieldText, Identity

T0: Final = 1_780_000_000 * 1_000_000_000  # 2026-05-28T20:26:40Z, a fixed epoch for tests
SECOND: Final = 1_000_000_000


def at(seconds: float) -> int:
    """Event time ``seconds`` after :data:`T0`, in ns."""
    return T0 + int(seconds * SECOND)


def _id(prefix: str, *parts: object) -> str:
    return prefix + blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def falco_event(
    rule: str,
    t: float = 0,
    *,
    pod: str = "web-1",
    namespace: str = "shop",
    container_id: str = "c0ffee000001",
    image: str = "docker.io/library/alpine",
    tags: Iterable[str] = (),
    priority: str = "notice",
    ips: Iterable[str] = (),
    target_ips: Iterable[str] = (),
    port: int = 0,
    fields: dict[str, FieldText] | None = None,
    id: str = "",
) -> Event:
    """A normalized Falco alert (pod fields present unless ``pod=""``)."""
    actor = Identity(namespace=namespace if pod else "", pod=pod, container_id=container_id,
                     image=image, ips=tuple(ips))  # fmt: skip
    target = Identity(ips=tuple(target_ips), port=port)
    time_ns = at(t)
    return Event(
        time_ns=time_ns,
        source=FALCO,
        id=id
        or _id("falco-", rule, time_ns, pod, namespace, container_id, tuple(target_ips), port),
        summary=f"{rule} in {namespace}/{pod or container_id}",
        rule=rule,
        priority=priority,
        tags=tuple(tags),
        actor=actor,
        target=target,
        fields=dict(fields or {}),
    )


def audit_event(
    verb: str,
    resource: str,
    t: float = 0,
    *,
    sa: str = "shop:web",
    pod: str = "web-1",
    node: str = "",
    ips: Iterable[str] = ("10.0.0.5",),
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    code: int = 200,
    decision: str = "allow",
    fields: dict[str, FieldText] | None = None,
    user: str = "",
    id: str = "",
) -> Event:
    """A normalized audit event made by service account ``sa`` ("ns:name") from pod ``pod``.

    ``namespace``/``name`` are the objectRef's; for ``pods`` the target pod is ``name``.
    ``sa=""`` makes a non-service-account user (``user``).
    """
    sa_ns = sa.split(":", 1)[0] if sa else ""
    username = f"system:serviceaccount:{sa}" if sa else (user or "alice")
    actor = Identity(namespace=sa_ns, pod=pod if sa else "", service_account=sa,
                     user=username, node=node, ips=tuple(ips))  # fmt: skip
    target = Identity(namespace=namespace, pod=name if resource == "pods" else "")
    time_ns = at(t)
    sub = f"/{subresource}" if subresource else ""
    return Event(
        time_ns=time_ns,
        source=K8S_AUDIT,
        id=id
        or _id("", verb, resource, subresource, time_ns, sa, pod, namespace, name)
        + "/ResponseComplete",
        summary=f"{username} {verb} {resource}{sub} {namespace}/{name}".rstrip("/ "),
        verb=verb,
        resource=resource,
        subresource=subresource,
        name=name,
        response_code=code,
        decision=decision,
        stage="ResponseComplete",
        actor=actor,
        target=target,
        fields=dict(fields or {}),
    )


@dataclass
class ListSource:
    """A source over a fixed list of events (iterate it, or pull with :meth:`next`)."""

    events: list[Event]
    position: int = 0

    def __iter__(self) -> Iterator[Event]:
        while self.position < len(self.events):
            self.position += 1
            yield self.events[self.position - 1]


@dataclass
class ListSink:
    """Collects chains in memory."""

    chains: list[Chain] = field(default_factory=list)

    def write(self, chains: Iterable[Chain]) -> None:
        """Append ``chains``."""
        self.chains.extend(chains)

    @property
    def rules(self) -> list[str]:
        """Rule ids of the collected chains, in order."""
        return [c.rule for c in self.chains]


def run(engine: Engine, events: Iterable[Event]) -> list[Chain]:
    """Feed ``events`` to ``engine`` and flush it: every chain, in emission order."""
    chains: list[Chain] = []
    for event in events:
        chains.extend(engine.process(event))
    chains.extend(engine.flush())
    return chains
