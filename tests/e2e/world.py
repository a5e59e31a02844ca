"""What the scenarios do to the cluster and read back from the detectors.

* :func:`workload_pod` — namespaces, a service account and a pod on the stand-in node,
  created by the admin (setup traffic), with a TokenRequest bound to that pod: the token a
  compromised container would read from its volume;
* :func:`falco_alert` / :func:`post_alert` — an alert for that pod as Falco's
  ``http_output`` sends it (JSON body, real pod uid and name), posted to both detectors;
* :func:`wait_chain` — the chain of one rule that cites given evidence, from a
  detector's JSON-lines output, within a deadline;
* :func:`audit_id_of` — an auditID from the API server's audit log (an exec stream's
  101 head is the kubelet's, so it has no ``Audit-Id`` header).
"""

from __future__ import annotations

import itertools
import json
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jsonschema

from tests.e2e.cluster import REPO, Cluster, Detector
from tests.e2e.kube import Kube, Reply

CHAIN_WAIT_S = 30.0
CHAIN_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((REPO / "docs" / "schema" / "chain-v1.schema.json").read_text())
)
_names = itertools.count()
_addresses = itertools.count()


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    uid: str
    service_account: str
    api: Kube  # requests with the pod's bound service-account token

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def unique(prefix: str) -> str:
    """A fresh name per call: every scenario gets namespaces of its own."""
    return f"{prefix}-{next(_names)}-{int(time.time() * 1000) % 100000}"


def namespace(admin: Kube, name: str) -> str:
    admin.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": name}})  # fmt: skip
    # no controller-manager here: the service accounts it would create, created by hand
    service_account(admin, name, "default")
    return name


def service_account(admin: Kube, ns: str, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    admin.create(f"/api/v1/namespaces/{ns}/serviceaccounts", body)


def pod_spec(node: str, account: str = "default") -> dict[str, Any]:
    return {
        "serviceAccountName": account,
        "nodeName": node,  # no scheduler: bound to the stand-in node directly
        "containers": [{"name": "app", "image": "registry.example/app:1"}],
    }


def workload_pod(cluster: Cluster, ns: str, name: str = "p", account: str = "sa") -> Pod:
    admin = cluster.admin
    service_account(admin, ns, account)
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": pod_spec(cluster.kubelet_node, account)}  # fmt: skip
    uid = admin.create(f"/api/v1/namespaces/{ns}/pods", body).body["metadata"]["uid"]
    token = bound_token(admin, ns, account, {"kind": "Pod", "apiVersion": "v1", "name": name,
                                             "uid": uid})  # fmt: skip
    return Pod(ns, name, uid, f"{ns}:{account}", admin.as_user(token, pod_ip()))


def pod_ip() -> str:
    """A loopback address of its own for each pod's requests (127.0.1.0 onwards)."""
    n = next(_addresses)
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


def bound_token(admin: Kube, ns: str, account: str, bound: dict[str, str] | None) -> str:
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if bound is not None:
        spec["boundObjectRef"] = bound
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    reply = admin.create(f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token", body)
    return str(reply.body["status"]["token"])


def grant(admin: Kube, ns: str, subject: str, rules: list[dict[str, Any]]) -> None:
    """A Role in ``ns`` with ``rules``, bound to service account ``subject`` ("ns:name")."""
    sa_ns, sa_name = subject.split(":")
    name = unique("grant")
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    admin.create(f"{rbac}/namespaces/{ns}/roles", {"apiVersion": "rbac.authorization.k8s.io/v1",
                 "kind": "Role", "metadata": {"name": name}, "rules": rules})  # fmt: skip
    admin.create(f"{rbac}/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_ns}],
    })  # fmt: skip


def falco_alert(
    pod: Pod | tuple[str, str, str], rule: str, proc: str, cmdline: str, tags: list[str]
) -> dict[str, Any]:
    """One alert as Falco's http_output posts it (``time`` with nanoseconds, ``Z``)."""
    ns, name, uid = (pod.namespace, pod.name, pod.uid) if isinstance(pod, Pod) else pod
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{time.time_ns() % 1000:03d}Z"
    fields = {
        "container.id": uid.replace("-", "")[:12],
        "container.name": "app",
        "container.image.repository": "registry.example/app",
        "evt.time": time.time_ns(),
        "k8s.ns.name": ns,
        "k8s.pod.name": name,
        "k8s.pod.uid": uid,
        "proc.cmdline": cmdline,
        "proc.name": proc,
        "proc.pname": "sh",
        "user.name": "root",
        "user.uid": 0,
    }
    return {
        "hostname": "e2e-node",
        "output": f"{now.strftime('%H:%M:%S')}: {rule} ({cmdline} in {ns}/{name})",
        "output_fields": fields,
        "priority": "Notice",
        "rule": rule,
        "source": "syscall",
        "tags": tags,
        "time": stamp,
    }


def post_alert(cluster: Cluster, alert: dict[str, Any]) -> None:
    """POST the alert to both detectors, as one Falco would to each of two receivers."""
    tls = ssl.create_default_context(cafile=str(cluster.ca))
    data = json.dumps(alert).encode()
    for detector in (cluster.webhook, cluster.logfile):
        request = urllib.request.Request(  # noqa: S310  (an https:// URL built here)
            detector.falco_url,
            data=data,
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {cluster.token}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, context=tls, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200


def chains(detector: Detector) -> list[dict[str, Any]]:
    if not detector.output.exists():
        return []
    return [json.loads(line) for line in detector.output.read_text().splitlines() if line]


def evidence(record: dict[str, Any]) -> list[str]:
    return [step["event_id"] for step in record["steps"]]


def wait_chain(detector: Detector, rule: str, cites: str) -> dict[str, Any]:
    """The first ``rule`` chain whose evidence includes ``cites``; AssertionError on time-out."""
    deadline = time.monotonic() + CHAIN_WAIT_S
    while time.monotonic() < deadline:
        for record in chains(detector):
            if record["rule"] == rule and cites in evidence(record):
                return record
        time.sleep(0.2)
    seen = [(r["rule"], evidence(r)) for r in chains(detector)]
    raise AssertionError(f"{detector.name}: no {rule} chain citing {cites} in {seen}")


def both_paths(cluster: Cluster, rule: str, cites: str) -> dict[str, Any]:
    """The chain from the webhook path; the log-file path must give the same one, and both
    must be valid chain records (the published JSON Schema)."""
    via_webhook = wait_chain(cluster.webhook, rule, cites)
    via_file = wait_chain(cluster.logfile, rule, cites)
    assert via_file["id"] == via_webhook["id"]
    assert evidence(via_file) == evidence(via_webhook)
    for record in (via_webhook, via_file):
        CHAIN_SCHEMA.validate(record)
    return via_webhook


def audit_id_of(cluster: Cluster, stage: str, match: Callable[[dict[str, Any]], bool]) -> str:
    """The auditID of the first audit-log line at ``stage`` for which ``match`` holds."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in cluster.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("stage") == stage and match(event):
                return str(event["auditID"])
        time.sleep(0.2)
    raise AssertionError(f"no {stage} audit event matched in {cluster.audit_log}")


def metric(cluster: Cluster, detector: Detector, name: str) -> float:
    """One sample of a detector's /metrics (0 when absent)."""
    tls = ssl.create_default_context(cafile=str(cluster.ca))
    url = f"https://127.0.0.1:{detector.port}/metrics"
    with urllib.request.urlopen(url, context=tls, timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def created(reply: Reply) -> tuple[str, str, str]:
    meta = reply.body["metadata"]
    return meta["namespace"], meta["name"], meta["uid"]
