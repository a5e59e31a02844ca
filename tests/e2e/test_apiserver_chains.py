"""The chains, driven through a real kube-apiserver with real bound tokens.

Each test acts out one story through the API (the audit events are the API server's own:
shipped policy, webhook and log backends) and posts the Falco alerts that the same pods
would raise. Every chain must cite the real auditIDs and come out identically (same chain
id, same evidence) from the webhook path and from the log-file path.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.cluster import STREAM_S, Cluster, free_port
from tests.e2e.kubelet import register_node
from tests.e2e.world import (
    audit_id_of,
    both_paths,
    bound_token,
    chains,
    created,
    evidence,
    falco_alert,
    grant,
    metric,
    namespace,
    pod_spec,
    post_alert,
    service_account,
    unique,
    workload_pod,
)

pytestmark = pytest.mark.e2e

NETWORK_TOOL = "Launch Suspicious Network Tool in Container"
NETWORK_TAGS = ["container", "mitre_discovery", "network", "process", "T1046"]
SHELL = "Terminal shell in container"
SHELL_TAGS = ["container", "mitre_execution", "shell", "T1059"]


def _two_namespaces(cluster: Cluster, story: str) -> tuple[str, str]:
    return namespace(cluster.admin, unique(f"{story}-a")), namespace(
        cluster.admin, unique(f"{story}-b")
    )


def _sentinel(cluster: Cluster) -> None:
    """A recon-token-pivot acted out now; returns once both paths have emitted it.

    Each detector takes its audit events in the order the API server wrote them, so by
    then every audit event written before the sentinel's request has been correlated, and
    the watermark is past them: a chain they would make has been emitted already.
    """
    a, b = _two_namespaces(cluster, "sentinel")
    p = workload_pod(cluster, a)
    post_alert(cluster, falco_alert(p, NETWORK_TOOL, "nmap", "nmap 10.0.0.0/8", NETWORK_TAGS))
    probe = p.api.get(f"/api/v1/namespaces/{b}/secrets")
    both_paths(cluster, "recon-token-pivot", probe.evidence())


def test_apiserver_recon_token_pivot(cluster: Cluster) -> None:
    a, b = _two_namespaces(cluster, "recon")
    p = workload_pod(cluster, a)
    post_alert(cluster, falco_alert(p, NETWORK_TOOL, "nmap", "nmap -sT 10.96.0.0/24", NETWORK_TAGS))
    secrets = p.api.get(f"/api/v1/namespaces/{b}/secrets")
    assert secrets.status == 403  # no RBAC for a:sa in b: an attempt is still evidence
    pods = p.api.get(f"/api/v1/namespaces/{a}/pods")
    assert pods.status == 403
    chain = both_paths(cluster, "recon-token-pivot", secrets.evidence())
    assert [s["step"] for s in chain["steps"]] == ["recon", "cross-namespace-api"]
    assert chain["steps"][0]["source"] == "falco"
    assert chain["entities"]["pods"] == [p.ref]
    assert chain["entities"]["service_accounts"] == [p.service_account]
    assert pods.evidence() not in evidence(chain)  # its own namespace: not a pivot
    assert "nodes" in chain["entities"] and "e2e-node" in chain["entities"]["nodes"]


def test_apiserver_workload_pivot_named_and_generate_name(cluster: Cluster) -> None:
    a, b = _two_namespaces(cluster, "workload")
    p = workload_pod(cluster, a)
    grant(cluster.admin, b, p.service_account,
          [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}])  # fmt: skip
    bodies = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
         "spec": pod_spec(cluster.kubelet_node)},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "miner-"},
         "spec": pod_spec(cluster.kubelet_node)},
    ]  # fmt: skip
    replies = [p.api.create(f"/api/v1/namespaces/{b}/pods", body) for body in bodies]
    targets = [created(reply) for reply in replies]
    assert targets[1][1].startswith("miner-") and targets[1][1] != "miner-"
    for target in targets:
        post_alert(cluster, falco_alert(target, NETWORK_TOOL, "nc", "nc -z 10.96.0.1 443",
                                        NETWORK_TAGS))  # fmt: skip
    for reply, (ns, name, _) in zip(replies, targets, strict=True):
        chain = both_paths(cluster, "workload-pivot", reply.evidence())
        assert f"{ns}/{name}" in chain["entities"]["pods"]
        assert chain["entities"]["service_accounts"] == [p.service_account]
        assert chain["steps"][0]["summary"].startswith(f"system:serviceaccount:{a}:sa create pods")


def test_apiserver_exec_pivot_longer_than_the_lateness(cluster: Cluster) -> None:
    a, b = _two_namespaces(cluster, "exec")
    p = workload_pod(cluster, a)
    q = workload_pod(cluster, b, name="q", account="app")
    exec_rule = {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]}
    grant(cluster.admin, b, p.service_account, [exec_rule])
    folded = "detector_audit_stages_folded_total"
    before = {d.name: metric(cluster, d, folded) for d in (cluster.webhook, cluster.logfile)}
    stream = p.api.exec_stream(b, "q", "sh", "app")
    assert stream.status == 101, stream.head
    post_alert(cluster, falco_alert(q, SHELL, "sh", "sh -i", SHELL_TAGS))
    time.sleep(STREAM_S)  # the stream outlasts the lateness and the delivery bound
    stream.close()
    assert any(line.startswith(f"POST /exec/{b}/q/app?") for line in cluster.kubelet.requests)
    exec_id = audit_id_of(
        cluster, "ResponseStarted",
        lambda e: e.get("objectRef", {}).get("subresource") == "exec"
        and e["objectRef"].get("namespace") == b,
    )  # fmt: skip
    chain = both_paths(cluster, "exec-pivot", f"{exec_id}/ResponseStarted")
    assert chain["path"][:2] == [p.ref, q.ref]  # P → Q
    assert chain["steps"][0]["summary"] == (
        f"system:serviceaccount:{a}:sa create pods/exec {b}/q -> 101"
    )
    # its ResponseComplete came seconds after its event time (the stream's length): the
    # same event, folded on both paths, so neither new evidence nor late
    complete = audit_id_of(cluster, "ResponseComplete", lambda e: e["auditID"] == exec_id)
    assert complete == exec_id
    _sentinel(cluster)  # every event written before it has been correlated
    for detector in (cluster.webhook, cluster.logfile):
        assert metric(cluster, detector, folded) > before[detector.name], detector.name
        late = metric(cluster, detector, "detector_engine_late_events_total")
        assert late == 0, f"{detector.name}: {late} late events"


def test_apiserver_impersonation_of_a_service_account(cluster: Cluster) -> None:
    a, b = _two_namespaces(cluster, "impersonation")
    service_account(cluster.admin, a, "sa")
    as_sa = cluster.admin.impersonating(f"system:serviceaccount:{a}:sa")
    secrets = as_sa.get(f"/api/v1/namespaces/{b}/secrets")
    assert secrets.status == 403  # authorized as a:sa, which may not
    chain = both_paths(cluster, "sa-impersonation", secrets.evidence())
    assert chain["entities"]["service_accounts"] == [f"{a}:sa"]  # joined on the SA
    assert chain["entities"]["impersonators"] == ["admin"]  # the real user kept
    assert chain["steps"][0]["summary"] == f"admin as {a}:sa list secrets {b} -> 403"


def test_apiserver_negatives_controllers_and_setup_chain_nothing(cluster: Cluster) -> None:
    quiet = namespace(cluster.admin, unique("negative"))
    # the admin's setup traffic (namespace, service accounts, pods, a token request); a
    # shell in the new pod with no exec before it is the pod's own business
    q = workload_pod(cluster, quiet, name="web")
    post_alert(cluster, falco_alert(q, SHELL, "sh", "sh -c date", SHELL_TAGS))
    # a controller: kube-system:job-controller (the API server bootstraps its RBAC) starts
    # a pod in another namespace, whose process then runs a network tool (a CI job's wget)
    service_account(cluster.admin, "kube-system", "job-controller")
    controller = cluster.admin.as_user(
        bound_token(cluster.admin, "kube-system", "job-controller", None)
    )
    job_pod = controller.create(f"/api/v1/namespaces/{quiet}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "job-"},
        "spec": pod_spec(cluster.kubelet_node),
    })  # fmt: skip
    post_alert(cluster, falco_alert(created(job_pod), NETWORK_TOOL, "wget", "wget -q http://10.96.0.9/",
                                    NETWORK_TAGS))  # fmt: skip
    # an exec the kubelet never served (a node whose kubelet is down: 500) is no pivot,
    # whatever runs in the pod afterwards
    dead = register_node(cluster.admin, unique("dead-node"), free_port())
    stranded = cluster.admin.create(f"/api/v1/namespaces/{quiet}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stranded"},
        "spec": pod_spec(dead),
    })  # fmt: skip
    failed = cluster.admin.exec_stream(quiet, "stranded", "sh", "app")
    assert failed.status == 500, failed.head
    failed.close()
    post_alert(cluster, falco_alert(created(stranded), SHELL, "sh", "sh -i", SHELL_TAGS))
    _sentinel(cluster)
    for detector in (cluster.webhook, cluster.logfile):
        touched = [r for r in chains(detector) if quiet in json.dumps(r["entities"])]
        assert touched == [], f"{detector.name}: {touched}"
        accounts = [sa for r in chains(detector) for sa in r["entities"]["service_accounts"]]
        assert not [sa for sa in accounts if sa.startswith("kube-system:")]
