"""The scenario's cast: its pods, the three nodes, and the moment it starts."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

T0 = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
API_SERVER = "10.96.0.1"
NODES = ("node-a", "node-b", "node-c")


@dataclass(frozen=True)
class Pod:
    """A pod; ``seed`` derives its stable uid, container id and token ids."""

    namespace: str
    name: str
    ip: str
    node: str
    image: str
    sa: str
    seed: int

    @property
    def uid(self) -> str:
        return seeded_uuid(self.seed)

    @property
    def container_id(self) -> str:
        return f"{random.Random(self.seed + 1).getrandbits(48):012x}"  # noqa: S311 - seeded demo data


def seeded_uuid(seed: int) -> str:
    """A version-4 UUID that depends only on ``seed`` (not on the scenario's RNG)."""
    return str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))  # noqa: S311 - seeded demo data


FRONTEND = Pod(
    "shop", "frontend-6f7c9d8b5-x2x9z", "10.0.1.7", "node-a", "ghcr.io/acme/shop-frontend",
    "frontend", 1,
)  # fmt: skip
PAYMENTS_API = Pod(
    "payments", "payments-api-7b8c6d5f4-q4w2e", "10.0.2.15", "node-b",
    "ghcr.io/acme/payments-api", "payments-api", 2,
)  # fmt: skip
REPORT_SYNC = Pod(
    "data", "report-sync-8x7kq", "10.0.3.21", "node-c", "ghcr.io/acme/payments-api", "default", 3
)
CHECKOUT = Pod(
    "shop", "checkout-5d4f8c7b9-m7n2p", "10.0.1.20", "node-a", "ghcr.io/acme/checkout",
    "checkout", 4,
)  # fmt: skip
ETL = Pod("data", "etl-worker-0", "10.0.3.5", "node-c", "ghcr.io/acme/etl", "etl", 5)
NOTEBOOK = Pod(
    "analytics", "notebook-0", "10.0.4.9", "node-b", "jupyter/scipy-notebook", "notebook", 6
)
CART = Pod("shop", "cart-66b9d7c5f-k8s4d", "10.0.1.31", "node-a", "ghcr.io/acme/cart", "cart", 7)
PROMETHEUS = Pod(
    "monitoring", "prometheus-0", "10.0.5.3", "node-b", "quay.io/prometheus/prometheus",
    "prometheus", 8,
)  # fmt: skip
HUNTER = Pod(
    "security", "kube-hunter-29384756-zt6qv", "10.0.5.40", "node-c",
    "docker.io/aquasec/kube-hunter", "kube-hunter", 9,
)  # fmt: skip
CI_RUNNER = Pod(
    "ci", "build-4812-7hxkq", "10.0.6.12", "node-b", "ghcr.io/acme/ci-runner", "deployer", 10
)
