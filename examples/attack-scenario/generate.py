"""Generate the bundled attack scenario (seeded, so the committed files can be regenerated).

    python examples/attack-scenario/generate.py            # rewrite the committed files
    python examples/attack-scenario/generate.py --out /tmp/big --noise-scale 200   # benchmark

Writes Falco alerts as ``http_output`` posts them (one JSON object per line, keys sorted
like Falco's nlohmann::json, ``time`` with 9 fractional digits, ``output_fields`` typed),
audit Events as the API server's log backend writes them (one per line), and audit
EventLists as the webhook backend posts them (one batch per line). The story is in
README.md next to this file; the chains it must produce are in expected.json.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC)
HERE = Path(__file__).resolve().parent
API_SERVER = "10.96.0.1"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    node: str
    image: str
    sa: str
    seed: int

    @property
    def uid(self) -> str:
        return str(uuid.UUID(int=random.Random(self.seed).getrandbits(128), version=4))  # noqa: S311 - seeded demo data

    @property
    def container_id(self) -> str:
        return f"{random.Random(self.seed + 1).getrandbits(48):012x}"  # noqa: S311 - seeded demo data


FRONTEND = Pod(
    "shop",
    "frontend-6f7c9d8b5-x2x9z",
    "10.0.1.7",
    "node-a",
    "ghcr.io/acme/shop-frontend",
    "frontend",
    1,
)
PAYMENTS_API = Pod(
    "payments",
    "payments-api-7b8c6d5f4-q4w2e",
    "10.0.2.15",
    "node-b",
    "ghcr.io/acme/payments-api",
    "payments-api",
    2,
)
REPORT_SYNC = Pod(
    "data", "report-sync-8x7kq", "10.0.3.21", "node-c", "ghcr.io/acme/payments-api", "default", 3
)
CHECKOUT = Pod(
    "shop",
    "checkout-5d4f8c7b9-m7n2p",
    "10.0.1.20",
    "node-a",
    "ghcr.io/acme/checkout",
    "checkout",
    4,
)
ETL = Pod("data", "etl-worker-0", "10.0.3.5", "node-c", "ghcr.io/acme/etl", "etl", 5)
NOTEBOOK = Pod(
    "analytics", "notebook-0", "10.0.4.9", "node-b", "jupyter/scipy-notebook", "notebook", 6
)
CART = Pod("shop", "cart-66b9d7c5f-k8s4d", "10.0.1.31", "node-a", "ghcr.io/acme/cart", "cart", 7)
PROMETHEUS = Pod(
    "monitoring",
    "prometheus-0",
    "10.0.5.3",
    "node-b",
    "quay.io/prometheus/prometheus",
    "prometheus",
    8,
)
HUNTER = Pod(
    "security",
    "kube-hunter-29384756-zt6qv",
    "10.0.5.40",
    "node-c",
    "docker.io/aquasec/kube-hunter",
    "kube-hunter",
    9,
)
CI_RUNNER = Pod(
    "ci", "build-4812-7hxkq", "10.0.6.12", "node-b", "ghcr.io/acme/ci-runner", "deployer", 10
)
NODES = ("node-a", "node-b", "node-c")


def rfc3339(moment: datetime, digits: int) -> str:
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{moment.microsecond:06d}" + "000"
    return f"{base}.{frac[:digits]}Z"


class Scenario:
    """Collects alerts and audit events; ``rng`` drives every random choice."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - seeded demo data
        self.falco: dict[str, list[tuple[datetime, dict[str, Any]]]] = {n: [] for n in NODES}
        self.audit: list[tuple[datetime, dict[str, Any]]] = []

    # --- Falco --------------------------------------------------------------------
    def alert(
        self,
        at: float,
        pod: Pod,
        rule: str,
        priority: str,
        tags: list[str],
        proc: str,
        cmdline: str,
        k8s: bool = True,
        **extra: Any,
    ) -> None:
        moment = T0 + timedelta(seconds=at, microseconds=self.rng.randrange(1_000_000))
        fields: dict[str, Any] = {
            "container.id": pod.container_id,
            "container.name": pod.name.rsplit("-", 1)[0] if k8s else pod.name.split("-")[0],
            "evt.time": int(moment.timestamp()) * 10**9 + moment.microsecond * 1000 + 417,
            "evt.type": "execve",
            "proc.cmdline": cmdline,
            "proc.name": proc,
            "proc.pname": "sh",
            "proc.tty": 0,
            "user.loginuid": -1,
            "user.name": "root",
        }
        if k8s:  # our LMD rules output these; upstream rules only with append_output
            fields.update(
                {
                    "container.image.repository": pod.image,
                    "k8s.ns.name": pod.namespace,
                    "k8s.pod.name": pod.name,
                    "k8s.pod.uid": pod.uid,
                    "k8s.pod.ip": pod.ip,
                }
            )
        fields.update(extra)
        time_text = rfc3339(moment, 6)[:-1] + "417Z"
        where = f"(pod={pod.namespace}/{pod.name})" if k8s else f"container_id={pod.container_id}"
        doc = {
            "hostname": pod.node,
            "output": f"{moment:%H:%M:%S}.{moment.microsecond:06d}417: {priority} {rule} "
            f"user=root process={proc} command={cmdline} {where}",
            "output_fields": dict(sorted(fields.items())),
            "priority": priority,
            "rule": rule,
            "source": "syscall",
            "tags": sorted(tags),
            "time": time_text,
        }
        self.falco[pod.node].append((moment, doc))

    def token_read(self, at: float, pod: Pod, proc: str = "cat") -> None:
        path = "/var/run/secrets/kubernetes.io/serviceaccount/token"
        self.alert(
            at,
            pod,
            "LMD Service Account Token Read",
            "Warning",
            ["container", "k8s", "mitre_credential_access", "T1528"],
            proc,
            f"{proc} {path}",
            **{"fd.name": path, "evt.type": "openat"},
        )

    def connect(
        self,
        at: float,
        pod: Pod,
        rule: str,
        tags: list[str],
        ip: str,
        port: int,
        proc: str = "curl",
        k8s: bool = True,
        name: str | None = None,
    ) -> None:
        sport = 30000 + self.rng.randrange(30000)
        extra: dict[str, Any] = {
            "evt.type": "connect",
            "fd.name": f"{pod.ip}:{sport}->{ip}:{port}",
            "fd.sip": ip,
            "fd.sport": port,
            "fd.cip": pod.ip,
            "fd.rip": ip,
            "fd.rport": port,
            "fd.sip.name": name,
            "fd.l4proto": "tcp",
            "fd.type": "ipv4",
        }
        self.alert(at, pod, rule, "Notice", tags, proc, f"{proc} http://{ip}:{port}/", k8s, **extra)

    # --- audit --------------------------------------------------------------------
    def request(
        self,
        at: float,
        verb: str,
        resource: str,
        namespace: str = "",
        name: str = "",
        *,
        pod: Pod | None = None,
        user: str = "",
        ips: list[str] | None = None,
        code: int = 200,
        sub: str = "",
        group: str = "",
        query: str = "",
        agent: str = "",
        response_name: str = "",
        stages: tuple[str, ...] = ("ResponseComplete",),
    ) -> None:
        moment = T0 + timedelta(seconds=at, microseconds=self.rng.randrange(1_000_000))
        audit_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        path = "/api/v1" if not group else f"/apis/{group}/v1"
        if namespace:
            path += f"/namespaces/{namespace}"
        path += f"/{resource}" + (f"/{name}" if name and verb != "create" or sub else "")
        path += f"/{sub}" if sub else ""
        user_info: dict[str, Any] = {"username": user, "groups": ["system:authenticated"]}
        if pod is not None:
            user_info = self._pod_user(pod)
        ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
        ref.update(
            {
                k: v
                for k, v in (
                    ("namespace", namespace),
                    ("name", name),
                    ("subresource", sub),
                    ("apiGroup", group),
                )
                if v
            }
        )
        for stage in stages:
            done = stage == "ResponseComplete"
            event: dict[str, Any] = {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Request" if verb == "create" and resource != "secrets" else "Metadata",
                "auditID": audit_id,
                "stage": stage,
                "requestURI": path + (f"?{query}" if query else ""),
                "verb": verb,
                "user": user_info,
                "sourceIPs": ips or [pod.ip if pod else API_SERVER],
                "userAgent": agent
                or (
                    "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
                    if pod is None
                    else "Go-http-client/2.0"
                ),
                "objectRef": ref,
                "responseStatus": {"metadata": {}, "code": code if done or code != 101 else 101},
                "requestReceivedTimestamp": rfc3339(moment, 6),
                "stageTimestamp": rfc3339(moment + timedelta(milliseconds=3 if done else 1), 6),
                "annotations": {
                    "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                    "authorization.k8s.io/reason": ""
                    if code == 403
                    else f'RBAC: allowed by RoleBinding "{resource}-access"',
                },
            }
            if code == 403:
                event["responseStatus"].update(status="Failure", reason="Forbidden")
            if verb == "create" and response_name and done:
                event["responseObject"] = {
                    "kind": "Object",
                    "metadata": {"name": response_name, "namespace": namespace},
                }
                event["requestObject"] = {
                    "metadata": {"generateName": response_name.rsplit("-", 1)[0] + "-"}
                }
            self.audit.append((moment, event))

    def _pod_user(self, pod: Pod) -> dict[str, Any]:
        prefix = "authentication.kubernetes.io/"
        jti = uuid.UUID(int=random.Random(pod.seed + 2).getrandbits(128), version=4)  # noqa: S311 - seeded demo data
        return {
            "username": f"system:serviceaccount:{pod.namespace}:{pod.sa}",
            "uid": str(uuid.UUID(int=random.Random(pod.seed + 3).getrandbits(128), version=4)),  # noqa: S311 - seeded demo data
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{pod.namespace}",
                "system:authenticated",
            ],
            "extra": {
                prefix + "credential-id": [f"JTI={jti}"],
                prefix + "node-name": [pod.node],
                prefix + "node-uid": [str(uuid.UUID(int=NODES.index(pod.node) + 1, version=4))],
                prefix + "pod-name": [pod.name],
                prefix + "pod-uid": [pod.uid],
            },
        }


def attacks(s: Scenario) -> None:
    """The six chains; P → Q → R is frontend → payments-api → report-sync."""
    # recon-token-pivot: the frontend pod is compromised through a web RCE (minute 3)
    s.alert(
        180,
        FRONTEND,
        "LMD Network Scanner Launched in Pod",
        "Warning",
        ["container", "network", "mitre_discovery", "T1046"],
        "nmap",
        "nmap -sT -p 443,6443,8080 10.0.0.0/16",
    )
    s.token_read(200, FRONTEND)
    s.request(215, "list", "secrets", "payments", pod=FRONTEND, code=403, agent="curl/8.5.0")
    s.request(221, "list", "pods", "payments", pod=FRONTEND, agent="curl/8.5.0")
    # exec-pivot: frontend's SA may exec into payments pods (an over-broad RoleBinding)
    s.request(
        260,
        "create",
        "pods",
        "payments",
        PAYMENTS_API.name,
        pod=FRONTEND,
        code=101,
        sub="exec",
        query="command=sh&command=-c&command=id%3Bcat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=api&stdin=true&stdout=true",
        agent="curl/8.5.0",
        stages=("ResponseStarted", "ResponseComplete"),
    )
    s.alert(
        261,
        PAYMENTS_API,
        "Terminal shell in container",
        "Notice",
        ["container", "maturity_stable", "mitre_execution", "shell", "T1059"],
        "sh",
        "sh -c id;cat /var/run/secrets/kubernetes.io/serviceaccount/token",
        **{"proc.pname": "runc", "proc.tty": 34816},
    )
    s.token_read(262, PAYMENTS_API)
    # workload-pivot: payments-api's token starts a job in the data namespace
    s.request(
        330,
        "create",
        "jobs",
        "data",
        pod=PAYMENTS_API,
        code=201,
        group="batch",
        response_name="report-sync",
        agent="curl/8.5.0",
    )
    s.request(
        331,
        "create",
        "pods",
        "data",
        user="system:serviceaccount:kube-system:job-controller",
        code=201,
        response_name=REPORT_SYNC.name,
        agent="kube-controller-manager/v1.31.2",
    )
    s.alert(
        352,
        REPORT_SYNC,
        "LMD Netcat or Socat Listen or Scan in Pod",
        "Warning",
        ["container", "network", "mitre_discovery", "T1046"],
        "nc",
        "nc -zv 10.0.2.0/24 5432",
    )
    s.alert(
        355,
        REPORT_SYNC,
        "Launch Suspicious Network Tool in Container",
        "Notice",
        ["container", "maturity_incubating", "mitre_execution", "network", "process", "T1059"],
        "nc",
        "nc -zv 10.0.2.0/24 5432",
        k8s=False,
    )
    # stolen-token-replay: checkout's token, read in the pod, replayed from outside
    s.token_read(420, CHECKOUT, proc="python3")
    s.request(
        540,
        "list",
        "secrets",
        "shop",
        pod=CHECKOUT,
        ips=["198.51.100.23"],
        agent="kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46",
    )
    # imds-credential-theft: the ETL worker hits the metadata service, then greps for keys
    s.connect(
        600,
        ETL,
        "LMD Cloud Metadata Service Contacted",
        ["container", "network", "aws", "mitre_credential_access", "T1552.005"],
        "169.254.169.254",
        80,
    )
    s.alert(
        640,
        ETL,
        "Find AWS Credentials",
        "Warning",
        [
            "host",
            "container",
            "maturity_stable",
            "mitre_credential_access",
            "process",
            "aws",
            "T1552",
        ],
        "grep",
        "grep -r aws_secret_access_key /home /root",
        k8s=False,
    )
    # internal-fanout: the notebook sweeps 12 internal services in 40 seconds
    for i in range(12):
        s.connect(
            720 + i * 3.3,
            NOTEBOOK,
            "LMD Tool Connected to Cluster Internal Address",
            ["container", "network", "mitre_discovery", "T1046"],
            f"10.0.{2 + i % 3}.{10 + i}",
            [80, 443, 5432, 6379][i % 4],
            proc="python3",
        )


def noise(s: Scenario, minutes: int, scale: int) -> None:
    """Benign traffic that must produce no chain (see README.md)."""
    rng = s.rng
    end = minutes * 60
    for second in range(0, end, max(1, 10 // scale)):  # kubelets renew node leases
        for node in NODES:
            s.request(
                second + rng.random(),
                "update",
                "leases",
                "kube-node-lease",
                node,
                user=f"system:node:{node}",
                group="coordination.k8s.io",
                ips=[f"10.0.0.{NODES.index(node) + 11}"],
                agent="kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
            )
    controllers = [
        "replicaset-controller",
        "deployment-controller",
        "endpointslice-controller",
        "job-controller",
    ]
    for _ in range(60 * minutes * scale):  # controllers watch and update the whole cluster
        ns = rng.choice(["shop", "payments", "data", "ci", "staging", "monitoring"])
        verb, resource = rng.choice(
            [
                ("get", "pods"),
                ("update", "pods"),
                ("list", "replicasets"),
                ("update", "endpointslices"),
                ("get", "deployments"),
            ]
        )
        s.request(
            rng.uniform(0, end),
            verb,
            resource,
            ns,
            f"{ns}-{rng.randrange(99)}",
            user=f"system:serviceaccount:kube-system:{rng.choice(controllers)}",
            agent="kube-controller-manager/v1.31.2",
        )
    for i in range(2 * minutes * scale):  # apps read their own config in their own namespace
        pod = rng.choice([CHECKOUT, CART, PAYMENTS_API, FRONTEND, ETL])
        s.request(
            rng.uniform(0, end),
            "get",
            "configmaps",
            pod.namespace,
            f"{pod.sa}-config-{i % 3}",
            pod=pod,
        )
    for i in range(minutes * scale):  # prometheus discovers targets cluster-wide
        for ns in ("shop", "payments", "data", "ci"):
            s.request(
                i * 60 + rng.random() * 5,
                "list",
                rng.choice(["pods", "endpoints", "services"]),
                ns,
                pod=PROMETHEUS,
            )
    s.connect(
        30,
        PROMETHEUS,
        "Contact K8S API Server From Container",
        ["container", "k8s", "maturity_stable", "mitre_discovery", "network", "T1565"],
        "10.96.0.1",
        443,
        proc="prometheus",
        k8s=False,
        name="kubernetes.default.svc.cluster.local",
    )
    s.alert(
        31,
        PROMETHEUS,
        "LMD Tool Connected to Kubernetes API",
        "Notice",
        ["container", "k8s", "T1613"],
        "prometheus",
        "prometheus --config.file=/etc/prometheus/prometheus.yml",
    )
    # CART reads its own token and calls the API in its own namespace from its own IP
    s.token_read(95, CART, proc="node")
    s.request(96, "get", "configmaps", "shop", "cart-flags", pod=CART)
    s.request(97, "list", "pods", "shop", pod=CART)
    # CI: a build job fetches tools with wget, then deploys to staging with its token
    s.request(
        400,
        "create",
        "pods",
        "ci",
        user="system:serviceaccount:kube-system:job-controller",
        code=201,
        response_name=CI_RUNNER.name,
        agent="kube-controller-manager/v1.31.2",
    )
    s.alert(
        420,
        CI_RUNNER,
        "Launch Ingress Remote File Copy Tools in Container",
        "Notice",
        [
            "container",
            "maturity_incubating",
            "mitre_command_and_control",
            "network",
            "process",
            "TA0011",
        ],
        "wget",
        "wget -q https://dl.k8s.io/release/v1.31.2/bin/linux/amd64/kubectl",
    )
    s.request(
        470,
        "create",
        "deployments",
        "staging",
        "shop-frontend",
        pod=CI_RUNNER,
        code=201,
        group="apps",
        agent="kubectl/v1.31.2",
    )
    s.request(
        471,
        "get",
        "deployments",
        "staging",
        "shop-frontend",
        pod=CI_RUNNER,
        group="apps",
        agent="kubectl/v1.31.2",
    )
    # the allowlisted scanner: nightly kube-hunter job sweeps the cluster network
    s.alert(
        900,
        HUNTER,
        "LMD Network Scanner Launched in Pod",
        "Warning",
        ["container", "network", "mitre_discovery", "T1046"],
        "kube-hunter",
        "kube-hunter --pod --quick",
    )
    for i in range(20):
        s.connect(
            902 + i,
            HUNTER,
            "LMD Tool Connected to Cluster Internal Address",
            ["container", "network", "mitre_discovery", "T1046"],
            f"10.0.{i % 6}.{i + 2}",
            [443, 10250, 2379, 8080][i % 4],
            proc="kube-hunter",
        )
    s.request(930, "list", "secrets", "kube-system", pod=HUNTER, code=403, agent="kube-hunter")


def write(s: Scenario, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for node, alerts in s.falco.items():
        name = f"falco-{node}.jsonl"
        counts[name] = _lines(out / name, [doc for _, doc in sorted(alerts, key=lambda a: a[0])])
    events = [doc for _, doc in sorted(s.audit, key=lambda a: a[0])]
    # two API server replicas: one writes a log file, the other posts webhook batches
    log = [e for i, e in enumerate(events) if i % 3 != 2]
    hook = [e for i, e in enumerate(events) if i % 3 == 2]
    counts["audit-apiserver-1.jsonl"] = _lines(out / "audit-apiserver-1.jsonl", log)
    batches = [
        {
            "kind": "EventList",
            "apiVersion": "audit.k8s.io/v1",
            "metadata": {},
            "items": hook[i : i + 400],
        }
        for i in range(0, len(hook), 400)
    ]
    counts["audit-webhook-apiserver-2.jsonl"] = _lines(
        out / "audit-webhook-apiserver-2.jsonl", batches
    )
    return counts


def _lines(path: Path, docs: list[dict[str, Any]]) -> int:
    with path.open("w", encoding="utf-8") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, separators=(",", ":")) + "\n")
    return len(docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--noise-scale", type=int, default=1, help="multiply the noise volume")
    args = parser.parse_args()
    scenario = Scenario(args.seed)
    attacks(scenario)
    noise(scenario, args.minutes, args.noise_scale)
    for name, count in write(scenario, args.out).items():
        print(f"{args.out / name}: {count} lines")


if __name__ == "__main__":
    main()
