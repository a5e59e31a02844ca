"""Chain records for sink tests, built the way the engine builds them (Chain → to_record)."""

from __future__ import annotations

from typing import Any

from correlation.chain import Chain, ChainStep, to_record
from correlation.event import Event, Identity

BASE_NS = 1_795_000_000_000_000_000


def make_record(i: int, severity: str = "high", rule: str = "recon-token-pivot") -> dict[str, Any]:
    """Record number ``i``: distinct id, incident shared by pairs of records."""
    pod = Identity(namespace="shop", pod=f"web-{i}", service_account="shop:web")
    scan = Event(
        time_ns=BASE_NS + i * 1_000_000_000,
        source="falco",
        id=f"falco-{i:08x}",
        summary=f"nmap run in shop/web-{i} <scan & probe>",
        rule="Network tool launched in container",
        actor=pod,
    )
    use = Event(
        time_ns=BASE_NS + i * 1_000_000_000 + 30_000_000_000,
        source="k8s_audit",
        id=f"audit-{i:08x}/ResponseComplete",
        summary="shop:web listed secrets in kube-system",
        verb="list",
        resource="secrets",
        actor=pod,
    )
    chain = Chain(
        id=f"lmc-{i:020x}",
        incident=f"inc-{i // 2:020x}",
        rule=rule,
        title="Scan then service-account token used across namespaces",
        severity=severity,
        techniques=("T1046", "T1528"),
        steps=(ChainStep("recon", scan), ChainStep("token_use", use)),
        entities={
            "pods": (f"shop/web-{i}",),
            "service_accounts": ("shop:web",),
            "namespaces": ("shop", "kube-system"),
            "nodes": ("node-1",),
            "ips": ("10.0.0.7",),
        },
        path=(f"shop/web-{i}",),
    )
    return to_record(chain)
