"""Partition keys per event kind, and the node relay's container resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from correlation.event import FALCO, K8S_AUDIT, Event, Identity
from correlation.rules.loader import SIGNALS_FILE
from detector.relay.route import (
    EXEC_SUBRESOURCES,
    WORKLOAD_RESOURCES,
    ContainerResolver,
    partition_keys,
)

SECOND = 1_000_000_000


def _falco(t: int, ns: str = "", pod: str = "", cid: str = "c1", node: str = "n1") -> Event:
    actor = Identity(namespace=ns, pod=pod, container_id=cid, node=node)
    return Event(time_ns=t * SECOND, source=FALCO, id=f"f{t}{pod}", rule="shell", actor=actor)


def _audit(
    verb: str, resource: str, target_ns: str, sa: str = "", sub: str = "", user: str = "bob"
) -> Event:
    home = sa.split(":")[0] if sa else ""
    actor = Identity(namespace=home, service_account=sa, user=user)
    return Event(
        time_ns=SECOND,
        source=K8S_AUDIT,
        id="a1/ResponseComplete",
        verb=verb,
        resource=resource,
        subresource=sub,
        actor=actor,
        target=Identity(namespace=target_ns, pod="q" if resource == "pods" else ""),
    )


@pytest.mark.parametrize(
    ("event", "keys"),
    [
        (_falco(1, "shop", "web-0"), ("shop",)),
        (_falco(1), ("node:n1",)),
        (_falco(1, node=""), ("cluster",)),
        (_audit("get", "secrets", "pay", sa="shop:web"), ("shop",)),  # SA: its namespace
        (_audit("get", "secrets", "pay"), ("pay",)),  # a person: the target
        (_audit("list", "nodes", ""), ("cluster",)),
        (_audit("create", "deployments", "pay", sa="shop:web"), ("shop", "pay")),
        (_audit("create", "pods", "pay", sa="shop:web", sub="exec"), ("shop", "pay")),
        (_audit("get", "pods", "pay", sa="shop:web", sub="attach"), ("shop", "pay")),
        (_audit("create", "deployments", "shop", sa="shop:web"), ("shop",)),  # same namespace
        (_audit("create", "pods", "pay", sa="shop:web", sub="binding"), ("shop",)),
        (_audit("delete", "deployments", "pay", sa="shop:web"), ("shop",)),
        (_audit("create", "pods", "pay", sub="exec"), ("pay",)),  # a person: target only
    ],
)
def test_partition_keys(event: Event, keys: tuple[str, ...]) -> None:
    assert partition_keys(event) == keys


def _signal(name: str) -> dict[str, list[str]]:
    doc = yaml.safe_load(Path(SIGNALS_FILE).read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for clause in doc["signals"][name]["all"]:
        for field, value in clause.items():
            found[field] = value if isinstance(value, list) else [value]
    return found


def test_dual_routing_follows_the_shipped_signals() -> None:
    assert set(_signal("workload-create")["resource"]) == WORKLOAD_RESOURCES
    assert set(_signal("pod-exec")["subresource"]) == EXEC_SUBRESOURCES


def test_resolver_fills_in_the_pod_from_an_earlier_teacher() -> None:
    resolver = ContainerResolver(hold_s=2.0, max_held=10, max_bindings=10)
    teacher = _falco(10, "shop", "web-0")
    assert resolver.admit(teacher) == [teacher]
    [out] = resolver.admit(_falco(11))
    assert (out.actor.namespace, out.actor.pod) == ("shop", "web-0")
    assert partition_keys(out) == ("shop",)
    assert resolver.resolved == 1


def test_resolver_holds_until_a_later_teacher_arrives() -> None:
    resolver = ContainerResolver(hold_s=2.0, max_held=10, max_bindings=10)
    alert = _falco(10)
    assert resolver.admit(alert) == []
    assert resolver.holding == 1 and resolver.oldest_held_ns == alert.time_ns
    teacher = _falco(11, "shop", "web-0")
    first, released = resolver.admit(teacher)
    assert first == teacher and released.id == alert.id and released.actor.pod == "web-0"
    assert resolver.holding == 0 and resolver.oldest_held_ns is None


def test_resolver_gives_up_after_the_hold_and_counts_it() -> None:
    resolver = ContainerResolver(hold_s=2.0, max_held=10, max_bindings=10)
    alert = _falco(10)
    resolver.admit(alert)
    assert resolver.expired(11 * SECOND) == []
    assert resolver.expired(12 * SECOND) == [alert]
    assert partition_keys(alert) == ("node:n1",)
    assert resolver.unresolved == 1


def test_resolver_is_bounded() -> None:
    resolver = ContainerResolver(hold_s=60.0, max_held=2, max_bindings=10)
    first = _falco(1, cid="a")
    resolver.admit(first)
    resolver.admit(_falco(2, cid="b"))
    assert resolver.admit(_falco(3, cid="c")) == [first]  # the oldest goes on unresolved
    assert resolver.holding == 2 and resolver.unresolved == 1
    assert len(resolver.drain()) == 2 and resolver.holding == 0


def test_audit_events_pass_untouched() -> None:
    resolver = ContainerResolver(hold_s=2.0, max_held=10, max_bindings=10)
    event = _audit("get", "secrets", "pay", sa="shop:web")
    assert resolver.admit(event) == [event]
