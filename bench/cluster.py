"""The simulated cluster: namespaces, nodes and pods, each pod with a benign role.

Everything derives from one ``random.Random(seed)``, so the same arguments give the same
cluster. A pod's *role* decides which benign noise it produces; roles are chosen so that no
benign pod can ever complete a chain rule (see ``noise.py`` for the reasoning per role)::

    app      calls the API in its own namespace with its bound token, from its own IP;
             sometimes reads its token file (Falco)            -> near-miss for token rules
    cloud    talks to the cloud metadata service, nothing else -> near-miss for imds
    probe    connects to <= 3 internal addresses a minute      -> near-miss for fan-out
    plain    rare unrelated Falco alerts (file writes, binaries dropped, ...)

Two more benign identities work across namespaces with pod-bound tokens and never raise a
Falco alert: Prometheus (``monitoring``) and the CI runners (``ci``).

Planted chains use their own attacker pods (``Cluster.attacker``), never a noise pod.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

NAMESPACE_WORDS = (
    "payments", "checkout", "catalog", "search", "identity", "billing", "orders", "shipping",
    "reviews", "media", "analytics", "ledger", "notify", "gateway", "profile", "inventory",
)  # fmt: skip
APP_WORDS = (
    "api", "worker", "web", "cache", "consumer", "scheduler", "sync", "indexer", "frontend",
    "backend", "proxy", "exporter", "cron", "stream", "auth", "render",
)  # fmt: skip
IMAGES = (
    "registry.example.com/shop/{app}", "docker.io/library/nginx", "docker.io/library/python",
    "ghcr.io/example/{app}", "quay.io/example/{app}", "docker.io/bitnami/redis",
)  # fmt: skip
ROLES = ("app", "app", "app", "app", "cloud", "probe", "plain", "plain")
ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for name suffixes


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod and everything the generators need to write events about it."""

    namespace: str
    name: str
    uid: str
    ip: str
    node: str
    node_ip: str
    container_id: str
    container_name: str
    image: str
    service_account: str  # bare name; its home namespace is ``namespace``
    role: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def rand_hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def rand_uid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def pod_ip(index: int) -> str:
    """Pod IPs from 10.128.0.0/9: unique for up to 8 million pods."""
    return f"10.{128 + (index >> 16)}.{(index >> 8) & 255}.{index & 255}"


class Cluster:
    """Namespaces, nodes and pods of one simulated cluster."""

    def __init__(self, rng: random.Random, pods: int, namespaces: int) -> None:
        self.rng = rng
        self.namespaces = [self._namespace_name(i) for i in range(namespaces)]
        self.nodes = [f"node-{i:04d}" for i in range(max(3, pods // 30))]
        self.node_ips = {n: f"10.0.{i >> 8}.{i & 255}" for i, n in enumerate(self.nodes)}
        self.pods = [self._make_pod(i, role=rng.choice(ROLES)) for i in range(pods)]
        self.by_role: dict[str, list[Pod]] = {}
        for pod in self.pods:
            self.by_role.setdefault(pod.role, []).append(pod)
        self._next_index = pods
        # Cluster-wide benign identities: Prometheus lists across every namespace and the CI
        # runners patch deployments in other namespaces, both with bound pod tokens.
        monitor = self.attacker(namespace="monitoring")
        self.monitor = replace(monitor, name="prometheus-k8s-0", service_account="prometheus-k8s")
        self.ci_runners = [
            replace(self.attacker(namespace="ci"), name=f"runner-{i}", service_account="deployer")
            for i in range(3)
        ]

    def _namespace_name(self, i: int) -> str:
        word = NAMESPACE_WORDS[i % len(NAMESPACE_WORDS)]
        return word if i < len(NAMESPACE_WORDS) else f"{word}-{i // len(NAMESPACE_WORDS)}"

    def _make_pod(self, index: int, role: str, namespace: str = "") -> Pod:
        rng = self.rng
        app = rng.choice(APP_WORDS)
        node = rng.choice(self.nodes)
        return Pod(
            namespace=namespace or rng.choice(self.namespaces),
            name=f"{app}-{rand_hex(rng, 10)}-{''.join(rng.choice(ALNUM) for _ in range(5))}",
            uid=rand_uid(rng),
            ip=pod_ip(index),
            node=node,
            node_ip=self.node_ips[node],
            container_id=rand_hex(rng, 12),
            container_name=app,
            image=rng.choice(IMAGES).format(app=app),
            service_account=app,
            role=role,
        )

    def attacker(self, namespace: str = "") -> Pod:
        """A fresh pod, used by one planted chain only (never by noise)."""
        pod = self._make_pod(self._next_index, role="attacker", namespace=namespace)
        self._next_index += 1
        return pod

    def other_namespace(self, namespace: str) -> str:
        """A namespace different from ``namespace``."""
        choices = [n for n in self.namespaces if n != namespace]
        return self.rng.choice(choices)

    def pick(self, role: str) -> Pod:
        pods = self.by_role.get(role) or self.pods
        return self.rng.choice(pods)
