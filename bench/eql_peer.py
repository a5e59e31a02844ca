"""The peer: a streaming pipeline on Elastic's ``eql`` engine (AGPL-3.0, benchmark only).

Per line: ``orjson`` decode → a minimal normalizer (pod from Falco's k8s fields or, failing
that, from the container id learned earlier; pod from the audit bound-token extras; a
cross-namespace flag) → ``eql.PythonEngine`` with one sequence per built-in rule that EQL
can express. The normalizer gets the same cheap timestamp path ours has (a per-second
cache), so the comparison measures the engines and decoding, not ``strptime``.

What EQL cannot express, and therefore is not run here:

* ``internal-fanout`` counts *distinct* endpoints per pod in 60 s; EQL has no distinct
  count inside a sequence (``runs=N`` repeats a stage, it does not count distinct values).
* ``stolen-token-replay`` needs "source IP is not one of P's known IPs": a comparison of a
  field with learned state, and EQL joins only by equality.

And the semantic differences of the four that it can express:

* ``imds-credential-theft`` is ordered in EQL (metadata contact first); ours is a group
  that completes in either order.
* ``workload-pivot`` joins the created name to the Falco pod name by equality; ours also
  matches a job's pods by owner prefix (``debug-x`` → ``debug-x-abcde``), which EQL misses.
* The optional token-read step of ``recon-token-pivot`` is dropped (EQL has no optional
  stage); it is evidence, not a condition, so the keys of the matches are the same.
* EQL keeps one partial per stage and key, overwriting older ones; it assumes time-sorted
  input. On the disordered and shuffled streams (``orders.py``) it runs on the same lines
  as ours, in the same order, so its cost is comparable; its matches there are not.
"""

from __future__ import annotations

from typing import Any, Final

import eql
import orjson

from bench.dataset import time_ns

TIME_UNIT: Final = 1_000_000_000  # event times are ns since the epoch
WORKLOADS = '"pods", "jobs", "cronjobs", "daemonsets", "deployments", "replicasets", "statefulsets"'
RECON = """(rule in ("LMD Network Scanner Launched in Pod",
  "LMD Netcat or Socat Listen or Scan in Pod",
  "Launch Suspicious Network Tool in Container", "Netcat Remote Code Execution in Container",
  "Launch Ingress Remote File Copy Tools in Container",
  "Launch Remote File Copy Tools in Container",
  "Kubernetes Client Tool Launched in Container", "LMD Tool Connected to Cluster Internal Address",
  "LMD Tool Connected to Kubernetes API", "LMD Raw Socket Opened in Pod",
  "Contact K8S API Server From Container", "Packet socket created in container",
  "Network Connection outside Local Subnet", "Basic Interactive Reconnaissance")
  or arrayContains(tags, "T1046", "T1613", "T1040"))"""
TOKEN = '(rule == "LMD Service Account Token Read" or arrayContains(tags, "T1528"))'  # noqa: S105
SHELL = """(rule in ("Terminal shell in container", "Run shell untrusted",
  "Netcat Remote Code Execution in Container",
  "Redirect STDOUT/STDIN to Network Connection in Container") or arrayContains(tags, "shell"))"""
IMDS = """(rule in ("LMD Cloud Metadata Service Contacted",
  "Contact EC2 Instance Metadata Service From Container",
  "Contact cloud metadata service from container") or arrayContains(tags, "T1552.005")
  or sip in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2"))"""
CREDS = """(rule in ("Find AWS Credentials", "Search Private Keys or Passwords",
  "Read environment variable from /proc files") or arrayContains(tags, "T1552", "T1552.001",
  "T1528", "mitre_credential_access", "mitre_discovery", "T1083"))"""
API_ABUSE = f"""(cross_ns == true and (
  (resource in ("secrets", "pods", "configmaps", "serviceaccounts", "roles", "rolebindings")
     and verb in ("get", "list", "watch"))
  or (verb == "create" and resource in ({WORKLOADS}) and subresource == null)
  or (resource == "pods" and subresource in ("exec", "attach") and verb in ("create", "get"))
  or (resource == "serviceaccounts" and subresource == "token")))"""
QUERIES: Final = {
    "recon-token-pivot": f"""sequence with maxspan=15m
  [falco where {RECON} and pod != null] by pod
  [k8s_audit where {API_ABUSE} and pod != null] by pod""",
    "exec-pivot": f"""sequence with maxspan=5m
  [k8s_audit where subresource in ("exec", "attach") and resource == "pods"
     and verb in ("create", "get") and code < 400 and target_pod != null] by target_pod
  [falco where pod != null and ({SHELL} or {RECON} or {TOKEN})] by pod""",
    "imds-credential-theft": f"""sequence with maxspan=10m
  [falco where pod != null and {IMDS}] by pod
  [falco where pod != null and {CREDS} and not {IMDS}] by pod""",
    "workload-pivot": f"""sequence with maxspan=15m
  [k8s_audit where verb == "create" and cross_ns == true and pod != null
     and resource in ({WORKLOADS}) and subresource == null and code >= 200 and code < 300
     and created != null] by created
  [falco where pod != null and ({SHELL} or {RECON})] by pod""",
}
ISSUE_QUERIES: Final = ("recon-token-pivot", "exec-pivot", "imds-credential-theft")


class Normalizer:
    """Raw document → ``eql.Event``; remembers container id → pod (the peer's only state)."""

    def __init__(self) -> None:
        self.containers: dict[str, str] = {}

    def __call__(self, doc: dict[str, Any]) -> eql.Event:
        if "auditID" in doc:
            return self.audit(doc)
        return self.falco(doc)

    def falco(self, doc: dict[str, Any]) -> eql.Event:
        fields = doc.get("output_fields") or {}
        ns, name, cid = (
            fields.get("k8s.ns.name"),
            fields.get("k8s.pod.name"),
            fields.get("container.id"),
        )
        if ns and name:
            pod: str | None = f"{ns}/{name}"
            if cid:
                self.containers[cid] = pod  # type: ignore[assignment]
        else:
            pod = self.containers.get(cid) if cid else None
        t = time_ns(doc["time"])
        data = {"rule": doc.get("rule"), "tags": doc.get("tags") or [], "pod": pod,
                "sip": fields.get("fd.sip") or "", "timestamp": t}  # fmt: skip
        return eql.Event("falco", t, data)

    def audit(self, doc: dict[str, Any]) -> eql.Event:
        user = doc.get("user") or {}
        username = user.get("username") or ""
        home = username.split(":")[2] if username.startswith("system:serviceaccount:") else None
        pod_names = (user.get("extra") or {}).get("authentication.kubernetes.io/pod-name")
        pod = f"{home}/{pod_names[0]}" if home and pod_names else None
        ref = doc.get("objectRef") or {}
        ns, name, resource = ref.get("namespace"), ref.get("name"), ref.get("resource")
        verb = doc.get("verb")
        t = time_ns(doc.get("requestReceivedTimestamp") or doc["stageTimestamp"])
        data = {
            "verb": verb, "resource": resource, "subresource": ref.get("subresource"),
            "code": (doc.get("responseStatus") or {}).get("code", 0), "pod": pod,
            "cross_ns": bool(home and ns and home != ns),
            "target_pod": f"{ns}/{name}" if resource == "pods" and ns and name else None,
            "created": self._created(doc, verb, ns, name), "timestamp": t,
        }  # fmt: skip
        return eql.Event("k8s_audit", t, data)

    @staticmethod
    def _created(
        doc: dict[str, Any], verb: str | None, ns: str | None, name: str | None
    ) -> str | None:
        if verb != "create":
            return None
        if not name:
            body = doc.get("responseObject") or doc.get("requestObject") or {}
            name = (body.get("metadata") or {}).get("name")
        return f"{ns}/{name}" if ns and name else None


class Peer:
    """An ``eql.PythonEngine`` with the sequence queries; collects ``(rule, pods)`` matches."""

    def __init__(self, rules: tuple[str, ...] = tuple(QUERIES)) -> None:
        self.engine = eql.PythonEngine({"time_unit": TIME_UNIT})
        self.matches: list[tuple[str, tuple[str, ...], int]] = []
        self.engine.add_output_hook(self._collect)
        with eql.parser.ignore_missing_functions:
            for rule in rules:
                query = eql.parse_query(QUERIES[rule])
                self.engine.add_analytic(eql.ast.EqlAnalytic(query, {"id": rule}))

    def _collect(self, output: eql.AnalyticOutput) -> None:
        events = output.events
        pods = {e.data.get(k) for e in events for k in ("pod", "target_pod", "created")}
        self.matches.append(
            (output.analytic_id, tuple(sorted(p for p in pods if p)), events[-1].time)
        )

    def stream(self, event: eql.Event) -> None:
        self.engine.stream_event(event)

    def finish(self) -> None:
        self.engine.finalize()


def run_lines(lines: list[bytes], rules: tuple[str, ...] = tuple(QUERIES)) -> Peer:
    """The whole peer pipeline over ``lines`` (used by tests and the stage runner)."""
    normalize, peer = Normalizer(), Peer(rules)
    for line in lines:
        peer.stream(normalize(orjson.loads(line)))
    peer.finish()
    return peer
