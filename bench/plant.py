"""Planted chains of all six kinds, with the ground truth the benchmark scores against.

Each planter takes a start time and a variant number and returns the chain's documents
plus one truth record::

    {"rule": "exec-pivot", "pod": "ns/q", "pods": [...], "variant": 1,
     "first_ns": ..., "last_ns": ..., "first": "<rfc3339>", "last": "<rfc3339>"}

``pod`` is the key pod a confirmed chain of that rule must name among its entities. Steps
are ``gap_s`` apart (more than the engine's default 60 s lateness, so the first step is
settled when the last arrives). Variants alternate this project's rule names with the
upstream ones, and exercise the hard joins: container-id-only alerts, tokens replayed
from a foreign IP, job pods matched by owner prefix, exec by a person vs. by a pod's SA.
Every planted chain uses fresh pods that no other event mentions.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from bench.alerts import alert, connect_alert, exec_alert, token_read_alert
from bench.cluster import Cluster, Pod, rand_hex, rand_uid
from bench.formats import audit_event, bound_token_user, process_fields
from correlation.chain import rfc3339
from synthetic import audit

Doc = dict[str, Any]
Planted = tuple[list[tuple[int, Doc]], dict[str, Any]]
S = 1_000_000_000
KINDS = (
    "recon-token-pivot", "stolen-token-replay", "imds-credential-theft",
    "workload-pivot", "exec-pivot", "internal-fanout",
)  # fmt: skip


class Planter:
    """Builds planted chains in a cluster; ``plant(kind, start_ns, variant)``."""

    def __init__(self, cluster: Cluster, rng: random.Random, gap_s: float) -> None:
        self.cluster = cluster
        self.rng = rng
        self.gap = int(gap_s * S)
        self._kinds: dict[str, Callable[[int, int], Planted]] = {
            "recon-token-pivot": self.recon_token_pivot,
            "stolen-token-replay": self.stolen_token_replay,
            "imds-credential-theft": self.imds,
            "workload-pivot": self.workload_pivot,
            "exec-pivot": self.exec_pivot,
            "internal-fanout": self.fanout,
        }

    def plant(self, kind: str, start_ns: int, variant: int) -> Planted:
        return self._kinds[kind](start_ns, variant)

    def span_ns(self) -> int:
        """Longest time a planted chain spans (for placing chains inside a stream)."""
        return 3 * self.gap

    def _call(self, t: int, pod: Pod, verb: str, resource: str, ns: str, **kw: Any) -> Doc:
        """An API request made with ``pod``'s bound token (from its own IP by default)."""
        credential = rand_uid(self.rng) + rand_hex(self.rng, 8)
        return audit_event(
            time_ns=t, audit_id=rand_uid(self.rng), verb=verb,
            user=bound_token_user(pod, credential), source_ip=kw.pop("source_ip", pod.ip),
            user_agent=kw.pop("user_agent", "kubectl/v1.30.2"), resource=resource,
            namespace=ns, **kw,
        )  # fmt: skip

    def recon_token_pivot(self, t: int, variant: int) -> Planted:
        p = self.cluster.attacker()
        other = self.cluster.other_namespace(p.namespace)
        if variant % 2 == 0:
            first = exec_alert("scanner", t, p, "nmap", "nmap -sT -p 1-1024 10.128.0.0/24")
            token = token_read_alert(t + self.gap, p)
            ask = self._call(t + 2 * self.gap, p, "list", "secrets", other, code=403)
            docs = [(t, first), (t + self.gap, token), (t + 2 * self.gap, ask)]
        else:
            first = exec_alert("up_nettool", t, p, "nc", "nc -zv 10.128.0.5 1-1000")
            ask = self._call(t + self.gap, p, "get", "pods", other, name="db-0")
            docs = [(t, first), (t + self.gap, ask)]
        return docs, _truth("recon-token-pivot", p.ref, [p.ref], docs, variant)

    def stolen_token_replay(self, t: int, variant: int) -> Planted:
        p = self.cluster.attacker()
        # The pod uses its token from its own IP first: that is how its IP becomes known.
        own = self._call(t - self.gap // 2, p, "get", "configmaps", p.namespace, name="app")
        token = token_read_alert(t, p)
        elsewhere = "198.51.100.23" if variant % 2 == 0 else self.cluster.pick("plain").node_ip
        replay = self._call(
            t + self.gap, p, "list", "pods", p.namespace, source_ip=elsewhere,
            user_agent="python-requests/2.31.0",
        )  # fmt: skip
        docs = [(t, token), (t + self.gap, replay)]
        truth = _truth("stolen-token-replay", p.ref, [p.ref], docs, variant)
        return [(t - self.gap // 2, own), *docs], truth

    def imds(self, t: int, variant: int) -> Planted:
        p = self.cluster.attacker()
        url_ip = "169.254.169.254"
        if variant % 2 == 0:
            first = connect_alert("imds", t, p, "curl", url_ip, 80)
            second = token_read_alert(t + self.gap, p)
        else:
            first = connect_alert("up_imds", t, p, "curl", url_ip, 80)
            # Upstream rules carry only container.id: the pod comes from the first alert.
            fields = process_fields("grep", "grep -r aws_secret_access_key /root/.aws")
            second = alert("up_aws_creds", t + self.gap, p, fields, with_k8s=False)
        docs = [(t, first), (t + self.gap, second)]
        return docs, _truth("imds-credential-theft", p.ref, [p.ref], docs, variant)

    def workload_pivot(self, t: int, variant: int) -> Planted:
        p = self.cluster.attacker()
        other = self.cluster.other_namespace(p.namespace)
        name = f"debug-{rand_hex(self.rng, 5)}"
        if variant % 2 == 0:
            kind, resource, group, pod_name = "Pod", "pods", "", name
        else:
            kind, resource, group = "Job", "jobs", "batch"
            pod_name = f"{name}-{rand_hex(self.rng, 5)}"
        body = {"kind": kind, "metadata": {"name": name, "namespace": other}}
        create = self._call(
            t, p, "create", resource, other, api_group=group, code=201,
            extra={"level": "RequestResponse", "requestObject": body, "responseObject": body},
        )  # fmt: skip
        new_pod = dataclasses.replace(self.cluster.attacker(other), name=pod_name)
        key = "up_shell" if variant % 2 == 0 else "scanner"
        follow = exec_alert(
            key, t + self.gap, new_pod, "bash" if key == "up_shell" else "nmap", "x"
        )
        docs = [(t, create), (t + self.gap, follow)]
        return docs, _truth("workload-pivot", p.ref, [p.ref, new_pod.ref], docs, variant)

    def exec_pivot(self, t: int, variant: int) -> Planted:
        q = self.cluster.attacker()
        uri = f"/api/v1/namespaces/{q.namespace}/pods/{q.name}/exec?command=sh&stdin=true&tty=true"
        common: dict[str, Any] = {"name": q.name, "subresource": "exec", "request_uri": uri}
        pods = [q.ref]
        if variant % 2 == 0:
            p = self.cluster.attacker(self.cluster.other_namespace(q.namespace))
            pods.append(p.ref)
            start = self._call(t, p, "create", "pods", q.namespace, code=101,
                               stage="ResponseStarted", **common)  # fmt: skip
            follow = exec_alert("up_shell", t + self.gap, q, "sh", "sh")
        else:
            user = audit.user("dev@example.com", ["oidc:dev", "system:authenticated"])
            start = audit_event(
                time_ns=t, audit_id=rand_uid(self.rng), verb="create", user=user,
                source_ip="203.0.113.50", user_agent="kubectl/v1.30.2", resource="pods",
                namespace=q.namespace, code=101, stage="ResponseStarted", **common,
            )  # fmt: skip
            follow = token_read_alert(t + self.gap, q, proc="cat")
        docs = [(t, start), (t + self.gap, follow)]
        return docs, _truth("exec-pivot", q.ref, pods, docs, variant)

    def fanout(self, t: int, variant: int) -> Planted:
        p = self.cluster.attacker()
        proc = "curl" if variant % 2 == 0 else "wget"
        docs = []
        targets = self.rng.sample(range(len(self.cluster.pods)), 14)
        for i, index in enumerate(targets):
            ip = self.cluster.pods[index].ip
            at = t + i * S
            docs.append((at, connect_alert("internal", at, p, proc, ip, 80 + i)))
        return docs, _truth("internal-fanout", p.ref, [p.ref], docs, variant)


def _truth(
    rule: str, pod: str, pods: list[str], docs: list[tuple[int, Doc]], variant: int
) -> dict[str, Any]:
    first, last = docs[0][0], docs[-1][0]
    return {
        "rule": rule, "pod": pod, "pods": sorted(pods), "variant": variant,
        "first_ns": first, "last_ns": last, "first": rfc3339(first), "last": rfc3339(last),
    }  # fmt: skip
