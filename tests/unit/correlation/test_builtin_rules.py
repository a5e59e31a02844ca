"""The six built-in chains: each fires on a minimal synthetic attack — with this
project's own Falco rule names and with upstream names/tags — and not on a benign
near-miss."""

from __future__ import annotations

import pytest

from correlation.chain import Chain
from correlation.engine import Engine
from correlation.event import Event
from correlation.rules import builtin_rules_paths, load_rules
from correlation.testing import audit_event, falco_event, run

RULES = load_rules(builtin_rules_paths())


def chains(events: list[Event]) -> list[Chain]:
    return run(Engine(RULES), events)


def fired(events: list[Event]) -> set[str]:
    return {c.rule for c in chains(events)}


# --- recon-token-pivot ------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "tags"),
    [
        ("LMD Network Scanner Launched in Pod", ("T1046",)),
        ("LMD Tool Connected to Kubernetes API", ("T1613",)),
        ("Launch Suspicious Network Tool in Container", ("mitre_execution", "T1059")),
        ("Contact K8S API Server From Container", ("T1565",)),
        ("Some Custom Scan Rule", ("network", "T1046")),  # by tag only
    ],
)
def test_recon_token_pivot(rule: str, tags: tuple[str, ...]) -> None:
    events = [
        falco_event(rule, 0, tags=tags),
        falco_event("LMD Service Account Token Read", 60, tags=("T1528",)),
        audit_event("get", "secrets", 300, namespace="payments", name="db", code=403),
    ]
    (chain,) = [c for c in chains(events) if c.rule == "recon-token-pivot"]
    assert [s.step for s in chain.steps] == ["recon", "token-read", "cross-namespace-api"]
    assert chain.entities["pods"] == ("shop/web-1",)
    assert chain.entities["service_accounts"] == ("shop:web",)
    assert chain.id.startswith("lmc-") and len(chain.id) == 24
    assert chain.incident.startswith("inc-") and len(chain.incident) == 24


def test_recon_token_pivot_near_misses() -> None:
    # same-namespace API use is the app's normal behaviour
    same_ns = [
        falco_event("LMD Network Scanner Launched in Pod", 0, tags=("T1046",)),
        audit_event("list", "pods", 60, namespace="shop"),
    ]
    # cross-namespace, but 15 min + 1 s after the scan
    too_late = [
        falco_event("LMD Network Scanner Launched in Pod", 0, tags=("T1046",)),
        audit_event("list", "secrets", 901, namespace="payments"),
    ]
    # another pod's identity
    other_pod = [
        falco_event("LMD Network Scanner Launched in Pod", 0, tags=("T1046",)),
        audit_event("list", "secrets", 60, namespace="payments", pod="api-2"),
    ]
    for events in (same_ns, too_late, other_pod):
        assert "recon-token-pivot" not in fired(events)


# --- stolen-token-replay ----------------------------------------------------------
def test_stolen_token_replay_from_foreign_ip() -> None:
    events = [
        audit_event("get", "configmaps", 0, namespace="shop", ips=("10.0.0.5",)),  # own IP
        falco_event("LMD Service Account Token Read", 10, tags=("T1528",), ips=("10.0.0.5",)),
        audit_event("list", "secrets", 600, namespace="shop", ips=("203.0.113.9",)),
    ]
    assert "stolen-token-replay" in fired(events)


def test_stolen_token_replay_upstream_tag_and_pod_ip_from_falco() -> None:
    events = [
        falco_event("Read sensitive file untrusted", 0, tags=("T1528",), ips=("10.0.0.5",)),
        audit_event("list", "pods", 60, namespace="shop", ips=("10.9.9.9",)),
    ]
    assert "stolen-token-replay" in fired(events)


def test_stolen_token_replay_near_miss_own_ip() -> None:
    events = [
        falco_event("LMD Service Account Token Read", 0, tags=("T1528",), ips=("10.0.0.5",)),
        audit_event("list", "secrets", 60, namespace="shop", ips=("10.0.0.5",)),
    ]
    assert "stolen-token-replay" not in fired(events)


# --- imds-credential-theft --------------------------------------------------------
@pytest.mark.parametrize(
    ("imds", "other"),
    [
        (
            falco_event("LMD Cloud Metadata Service Contacted", 0, tags=("T1552.005",)),
            falco_event("LMD Service Account Token Read", 30, tags=("T1528",)),
        ),
        (
            falco_event("Contact EC2 Instance Metadata Service From Container", 80),
            falco_event("Find AWS Credentials", 30, tags=("mitre_credential_access", "T1552")),
        ),
        (
            falco_event("Contact cloud metadata service from container", 0),
            falco_event("Launch Suspicious Network Tool in Container", 300),
        ),
        (
            falco_event("Custom", 0, target_ips=("fd00:ec2::254",), port=80),
            falco_event("Read environment variable from /proc files", 590),
        ),
        (
            falco_event("Custom", 0, target_ips=("168.63.129.16",), port=80),
            falco_event("LMD Service Account Token Read", 30, tags=("T1528",)),
        ),
    ],
)
def test_imds_credential_theft_any_order(imds: Event, other: Event) -> None:
    (chain,) = [c for c in chains([imds, other]) if c.rule == "imds-credential-theft"]
    assert {s.step for s in chain.steps} == {"metadata-contact", "discovery-or-credentials"}


def test_imds_near_misses() -> None:
    two_imds = [
        falco_event("LMD Cloud Metadata Service Contacted", 0, tags=("T1552.005",)),
        falco_event("Contact EC2 Instance Metadata Service From Container", 5),
    ]
    other_pod = [
        falco_event("LMD Cloud Metadata Service Contacted", 0, tags=("T1552.005",)),
        falco_event("LMD Service Account Token Read", 30, tags=("T1528",), pod="web-2"),
    ]
    azure_dns = [  # the wireserver also answers DNS: port 53 is not metadata access
        falco_event("Custom", 0, target_ips=("168.63.129.16",), port=53),
        falco_event("LMD Service Account Token Read", 30, tags=("T1528",)),
    ]
    assert "imds-credential-theft" not in fired(two_imds)
    assert "imds-credential-theft" not in fired(other_pod)
    assert "imds-credential-theft" not in fired(azure_dns)


# --- workload-pivot ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("resource", "name", "pod", "falco_rule"),
    [
        ("pods", "evil", "evil", "Terminal shell in container"),
        ("deployments", "miner", "miner-5d8f7c9b4-x2x9z", "LMD Network Scanner Launched in Pod"),
        ("jobs", "one-off", "one-off-abcde", "Launch Suspicious Network Tool in Container"),
    ],
)
def test_workload_pivot(resource: str, name: str, pod: str, falco_rule: str) -> None:
    events = [
        audit_event("create", resource, 0, namespace="kube-system", name=name, code=201),
        falco_event(falco_rule, 120, namespace="kube-system", pod=pod, tags=("shell",)),
    ]
    (chain,) = [c for c in chains(events) if c.rule == "workload-pivot"]
    assert chain.steps[0].step == "workload-created"


def test_workload_pivot_near_misses() -> None:
    denied = [
        audit_event("create", "pods", 0, namespace="kube-system", name="evil", code=403),
        falco_event("Terminal shell in container", 60, namespace="kube-system", pod="evil"),
    ]
    other_ns = [
        audit_event("create", "pods", 0, namespace="kube-system", name="evil", code=201),
        falco_event("Terminal shell in container", 60, namespace="default", pod="evil"),
    ]
    own_ns = [
        audit_event("create", "pods", 0, namespace="shop", name="evil", code=201),
        falco_event("Terminal shell in container", 60, namespace="shop", pod="evil"),
    ]
    for events in (denied, other_ns, own_ns):
        assert "workload-pivot" not in fired(events)


@pytest.mark.parametrize(
    ("sa", "fires"),
    [
        ("kube-system:job-controller", False),
        ("kube-system:replicaset-controller", False),
        ("kube-system:daemon-set-controller", False),
        ("kube-system:deployer", True),  # a pod's own SA in kube-system still counts
        ("tools:job-controller", True),  # a look-alike outside kube-system still counts
    ],
)
def test_workload_pivot_ignores_controllers_as_creators(sa: str, fires: bool) -> None:
    # kube-controller-manager creates the pods of every Job/Deployment in the owner's
    # namespace: "another namespace" than kube-system, but bookkeeping, not a pivot.
    events = [
        audit_event("create", "pods", 0, sa=sa, pod="", namespace="ci", name="build-1", code=201),
        falco_event(
            "Launch Suspicious Network Tool in Container", 60, namespace="ci", pod="build-1"
        ),
    ]
    assert ("workload-pivot" in fired(events)) is fires


# --- exec-pivot -------------------------------------------------------------------
def test_exec_pivot_spans_p_to_q() -> None:
    events = [
        falco_event("LMD Network Scanner Launched in Pod", 0, tags=("T1046",)),
        audit_event("create", "pods", 60, namespace="payments", name="db-0", subresource="exec"),
        falco_event("Terminal shell in container", 62, namespace="payments", pod="db-0"),
    ]
    (chain,) = [c for c in chains(events) if c.rule == "exec-pivot"]
    assert chain.path == ("shop/web-1", "payments/db-0")
    assert set(chain.entities["pods"]) == {"shop/web-1", "payments/db-0"}


def test_exec_pivot_by_a_human_and_near_miss() -> None:
    human = [
        audit_event("get", "pods", 0, sa="", namespace="payments", name="db-0", subresource="exec"),
        falco_event("LMD Service Account Token Read", 30, namespace="payments", pod="db-0"),
    ]
    assert "exec-pivot" in fired(human)
    late = [
        audit_event("create", "pods", 0, namespace="payments", name="db-0", subresource="exec"),
        falco_event("Terminal shell in container", 301, namespace="payments", pod="db-0"),
    ]
    assert "exec-pivot" not in fired(late)


# --- internal-fanout --------------------------------------------------------------
def connection(t: float, ip: str, port: int = 80, rule: str = "") -> Event:
    return falco_event(
        rule or "LMD Tool Connected to Cluster Internal Address",
        t,
        tags=("T1046",),
        target_ips=(ip,),
        port=port,
    )


def test_internal_fanout_ten_distinct() -> None:
    events = [connection(i * 5, f"10.1.0.{i}") for i in range(10)]
    (chain,) = [c for c in chains(events) if c.rule == "internal-fanout"]
    assert len(chain.steps) == 10


def test_internal_fanout_distinct_ports_and_upstream_name() -> None:
    events = [
        connection(i, "10.1.0.1", 8000 + i, "Network Connection outside Local Subnet")
        for i in range(10)
    ]
    assert "internal-fanout" in fired(events)


def test_internal_fanout_near_misses() -> None:
    nine = [connection(i, f"10.1.0.{i}") for i in range(9)]
    repeats = [connection(i, "10.1.0.1") for i in range(30)]
    spread = [connection(i * 7, f"10.1.0.{i}") for i in range(10)]  # 63 s > 60 s
    for events in (nine, repeats, spread):
        assert "internal-fanout" not in fired(events)


def test_noise_raises_nothing() -> None:
    noise = [
        audit_event("get", "configmaps", i, namespace="shop", name="cfg") for i in range(50)
    ] + [
        audit_event("list", "pods", i, sa="kube-system:replicaset-controller", pod="")
        for i in range(50)
    ]
    assert chains(noise) == []
