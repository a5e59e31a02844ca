"""Benign traffic shaped like a real cluster: controllers, kubelets and apps dominate.

Audit events make up ``1 - falco_ratio`` of the stream. Their mix (weights below) follows
what a busy cluster's audit log shows: kubelets and controllers renewing leases and
patching status, applications reading their own namespace, Prometheus listing
everything, people and CI looking at and patching deployments.

Falco alerts are rare and come from noise pods by role (see ``cluster.py``). Why none of
them can complete a chain rule:

* ``app`` pods read their token and call the API only in their own namespace, always from
  their own IP: no recon step, nothing cross-namespace, no foreign source IP.
* ``cloud`` pods contact the metadata service and do nothing else: no second step.
* ``probe`` pods connect to a fixed set of 3 internal addresses: far below any fan-out N,
  and they never call the API, so their recon alerts open partials that only expire.
* ``plain`` pods raise unrelated alerts; people exec into them with non-shell commands.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from bench.alerts import NOISE_RULES, connect_alert, exec_alert, token_read_alert
from bench.cluster import Cluster, Pod, rand_uid
from bench.formats import audit_event, bound_token_user
from synthetic import audit

Doc = dict[str, Any]
KUBE_VERSION = "v1.30.2 (linux/amd64) kubernetes/39683505"
CONTROL_PLANE_IP = "172.18.0.2"
CONTROLLERS = (
    "replicaset-controller", "endpointslice-controller", "deployment-controller",
    "job-controller", "namespace-controller", "horizontal-pod-autoscaler", "node-controller",
)  # fmt: skip
APP_READS = (
    ("get", "configmaps", ""), ("list", "endpoints", ""), ("watch", "configmaps", ""),
    ("get", "leases", "coordination.k8s.io"), ("update", "leases", "coordination.k8s.io"),
    ("list", "services", ""), ("get", "secrets", ""),
)  # fmt: skip
PEOPLE = ("alice@example.com", "bob@example.com", "oncall@example.com")


class Noise:
    """An endless, time-ordered stream of benign documents (``(time_ns, doc)``)."""

    def __init__(self, cluster: Cluster, rng: random.Random, falco_ratio: float) -> None:
        self.cluster = cluster
        self.rng = rng
        self.falco_ratio = falco_ratio
        audit: list[tuple[float, Callable[[int], Doc]]] = [
            (0.30, self.kubelet), (0.25, self.controller), (0.29, self.app_call),
            (0.06, self.prometheus), (0.05, self.person), (0.03, self.ci), (0.02, self.watch),
        ]  # fmt: skip
        self._audit_table = _cumulative(audit)
        falco: list[tuple[float, Callable[[int], Doc]]] = [
            (0.35, self.token_read), (0.20, self.metadata), (0.25, self.probe),
            (0.20, self.unrelated),
        ]  # fmt: skip
        self._falco_table = _cumulative(falco)
        self._probe_targets: dict[str, list[str]] = {}

    def stream(self, start_ns: int, interval_ns: int) -> Iterator[tuple[int, Doc]]:
        rng = self.rng
        time_ns = start_ns
        while True:
            time_ns += interval_ns
            table = self._falco_table if rng.random() < self.falco_ratio else self._audit_table
            yield time_ns, _pick(table, rng.random())(time_ns)

    # --- audit -------------------------------------------------------------------------
    def _audit(self, time_ns: int, **kw: Any) -> Doc:
        return audit_event(time_ns=time_ns, audit_id=rand_uid(self.rng), **kw)

    def kubelet(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("app")
        user = audit.user(f"system:node:{pod.node}", ["system:nodes", "system:authenticated"])
        verb, resource, sub, ns, name = self.rng.choice(
            (
                ("patch", "pods", "status", pod.namespace, pod.name),
                ("get", "configmaps", "", pod.namespace, "kube-root-ca.crt"),
                ("update", "leases", "", "kube-node-lease", pod.node),
                ("get", "nodes", "", "", pod.node),
            )
        )
        group = "coordination.k8s.io" if resource == "leases" else ""
        return self._audit(
            time_ns, verb=verb, user=user, source_ip=pod.node_ip,
            user_agent=f"kubelet/{KUBE_VERSION}", resource=resource, namespace=ns, name=name,
            subresource=sub, api_group=group,
        )  # fmt: skip

    def controller(self, time_ns: int) -> Doc:
        rng = self.rng
        sa = rng.choice(CONTROLLERS)
        groups = ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                  "system:authenticated"]  # fmt: skip
        user = audit.user(f"system:serviceaccount:kube-system:{sa}", groups)
        pod = self.cluster.pick("app")
        verb, resource, group, name = rng.choice(
            (
                ("update", "endpointslices", "discovery.k8s.io", pod.container_name),
                ("get", "replicasets", "apps", pod.name.rsplit("-", 1)[0]),
                ("patch", "deployments", "apps", pod.container_name),
                ("create", "events", "", f"{pod.name}.{rand_uid(rng)[:16]}"),
                ("update", "leases", "coordination.k8s.io", "kube-controller-manager"),
            )
        )
        ns = "kube-system" if resource == "leases" else pod.namespace
        agent = f"kube-controller-manager/{KUBE_VERSION}/system:serviceaccount:kube-system:{sa}"
        return self._audit(
            time_ns, verb=verb, user=user, source_ip=CONTROL_PLANE_IP, user_agent=agent,
            resource=resource, namespace=ns, name=name, api_group=group,
            code=201 if verb == "create" else 200,
        )  # fmt: skip

    def app_call(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("app")
        verb, resource, group = self.rng.choice(APP_READS)
        name = "" if verb in ("list", "watch") else f"{pod.container_name}-config"
        return self._pod_call(time_ns, pod, verb, resource, pod.namespace, name, group)

    def _pod_call(
        self, time_ns: int, pod: Pod, verb: str, resource: str, ns: str, name: str, group: str = ""
    ) -> Doc:
        credential = rand_uid(self.rng) + pod.uid[:8]
        return self._audit(
            time_ns, verb=verb, user=bound_token_user(pod, credential), source_ip=pod.ip,
            user_agent="Go-http-client/2.0", resource=resource, namespace=ns, name=name,
            api_group=group,
        )  # fmt: skip

    def prometheus(self, time_ns: int) -> Doc:
        ns = self.rng.choice(self.cluster.namespaces)
        resource = self.rng.choice(("pods", "endpoints", "services"))
        return self._pod_call(time_ns, self.cluster.monitor, "list", resource, ns, "")

    def ci(self, time_ns: int) -> Doc:
        target = self.cluster.pick("app")
        runner = self.rng.choice(self.cluster.ci_runners)
        verb = self.rng.choice(("get", "patch"))
        return self._pod_call(
            time_ns, runner, verb, "deployments", target.namespace, target.container_name, "apps"
        )

    def person(self, time_ns: int) -> Doc:
        rng = self.rng
        user = audit.user(rng.choice(PEOPLE), ["oidc:sre", "system:authenticated"])
        pod = self.cluster.pick("plain")
        if rng.random() < 0.1:
            # kubectl exec with a non-shell command, never followed by a Falco alert.
            uri = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/exec?command=ls&stdout=true"
            return self._audit(
                time_ns, verb="create", user=user, source_ip="203.0.113.7",
                user_agent="kubectl/v1.30.2", resource="pods", namespace=pod.namespace,
                name=pod.name, subresource="exec", code=101, stage="ResponseStarted",
                request_uri=uri,
            )  # fmt: skip
        resource, group = rng.choice((("pods", ""), ("deployments", "apps"), ("events", "")))
        return self._audit(
            time_ns, verb="list", user=user, source_ip="203.0.113.7",
            user_agent="kubectl/v1.30.2", resource=resource, namespace=pod.namespace,
            api_group=group, code=rng.choice((200, 200, 200, 403)),
        )  # fmt: skip

    def watch(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("app")
        credential = rand_uid(self.rng) + pod.uid[:8]
        return self._audit(
            time_ns, verb="watch", user=bound_token_user(pod, credential), source_ip=pod.ip,
            user_agent="Go-http-client/2.0", resource="configmaps", namespace=pod.namespace,
            stage="ResponseStarted",
        )  # fmt: skip

    # --- falco -------------------------------------------------------------------------
    def token_read(self, time_ns: int) -> Doc:
        return token_read_alert(time_ns, self.cluster.pick("app"), proc="python3")

    def metadata(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("cloud")
        key = self.rng.choice(("imds", "up_imds"))
        return connect_alert(key, time_ns, pod, "aws", "169.254.169.254", 80)

    def probe(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("probe")
        targets = self._probe_targets.get(pod.name)
        if targets is None:
            targets = [self.cluster.pick("app").ip for _ in range(3)]
            self._probe_targets[pod.name] = targets
        return connect_alert("internal", time_ns, pod, "curl", self.rng.choice(targets), 8080)

    def unrelated(self, time_ns: int) -> Doc:
        pod = self.cluster.pick("plain")
        key = self.rng.choice(NOISE_RULES)
        return exec_alert(key, time_ns, pod, "cat", "cat /etc/shadow")


def _cumulative(
    table: list[tuple[float, Callable[[int], Doc]]],
) -> list[tuple[float, Callable[[int], Doc]]]:
    total, out = 0.0, []
    for weight, fn in table:
        total += weight
        out.append((total, fn))
    return [(edge / total, fn) for edge, fn in out]


def _pick(table: list[tuple[float, Callable[[int], Doc]]], r: float) -> Callable[[int], Doc]:
    for edge, fn in table:
        if r < edge:
            return fn
    return table[-1][1]
