"""Benign traffic that must produce no chain (README.md says why each one is benign).

The volume parts scale with ``scale`` (``--noise-scale`` for benchmarks); the look-alike
parts — the ones that resemble a story but are not one — are written once.
"""

from __future__ import annotations

from .pods import CART, CHECKOUT, CI_RUNNER, ETL, FRONTEND, HUNTER, NODES, PAYMENTS_API, PROMETHEUS
from .scenario import Scenario

KUBELET = "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46"
CONTROLLER_MANAGER = "kube-controller-manager/v1.31.2"
CONTROLLERS = [
    "replicaset-controller",
    "deployment-controller",
    "endpointslice-controller",
    "job-controller",
]
CONTROLLER_CALLS = [
    ("get", "pods"),
    ("update", "pods"),
    ("list", "replicasets"),
    ("update", "endpointslices"),
    ("get", "deployments"),
]
JOB_CONTROLLER = "system:serviceaccount:kube-system:job-controller"
DISCOVERY = ["container", "network", "mitre_discovery", "T1046"]


def noise(s: Scenario, minutes: int, scale: int) -> None:
    """Every kind of benign traffic over ``minutes``; the call order fixes the RNG draws."""
    end = minutes * 60
    node_leases(s, end, scale)
    controllers(s, end, 60 * minutes * scale)
    own_config_reads(s, end, 2 * minutes * scale)
    prometheus(s, minutes * scale)
    cart_uses_its_own_token(s)
    ci_build_deploys(s)
    allowlisted_scanner(s)


def node_leases(s: Scenario, end: int, scale: int) -> None:
    """Kubelets renew their node leases every 10 s (more often when scaled)."""
    for second in range(0, end, max(1, 10 // scale)):
        for node in NODES:
            s.audit.request(
                second + s.rng.random(), "update", "leases", "kube-node-lease", node,
                user=f"system:node:{node}", group="coordination.k8s.io",
                ips=[f"10.0.0.{NODES.index(node) + 11}"], agent=KUBELET,
            )  # fmt: skip


def controllers(s: Scenario, end: int, count: int) -> None:
    """Controllers watch and update the whole cluster."""
    rng = s.rng
    for _ in range(count):
        ns = rng.choice(["shop", "payments", "data", "ci", "staging", "monitoring"])
        verb, resource = rng.choice(CONTROLLER_CALLS)
        # argument order is draw order: time, object name, then the controller
        s.audit.request(
            rng.uniform(0, end), verb, resource, ns, f"{ns}-{rng.randrange(99)}",
            user=f"system:serviceaccount:kube-system:{rng.choice(CONTROLLERS)}",
            agent=CONTROLLER_MANAGER,
        )  # fmt: skip


def own_config_reads(s: Scenario, end: int, count: int) -> None:
    """Apps read their own config in their own namespace."""
    for i in range(count):
        pod = s.rng.choice([CHECKOUT, CART, PAYMENTS_API, FRONTEND, ETL])
        name = f"{pod.sa}-config-{i % 3}"
        s.audit.request(s.rng.uniform(0, end), "get", "configmaps", pod.namespace, name, pod=pod)


def prometheus(s: Scenario, rounds: int) -> None:
    """Prometheus discovers targets cluster-wide and talks to the API server."""
    for i in range(rounds):
        for ns in ("shop", "payments", "data", "ci"):
            at = i * 60 + s.rng.random() * 5
            s.audit.request(at, "list", s.rng.choice(["pods", "endpoints", "services"]), ns,
                            pod=PROMETHEUS)  # fmt: skip
    tags = ["container", "k8s", "maturity_stable", "mitre_discovery", "network", "T1565"]
    s.falco.connect(
        30, PROMETHEUS, "Contact K8S API Server From Container", tags, "10.96.0.1", 443,
        proc="prometheus", k8s=False, name="kubernetes.default.svc.cluster.local",
    )  # fmt: skip
    command = "prometheus --config.file=/etc/prometheus/prometheus.yml"
    rule = "LMD Tool Connected to Kubernetes API"
    tags = ["container", "k8s", "T1613"]
    s.falco.alert(31, PROMETHEUS, rule, "Notice", tags, "prometheus", command)


def cart_uses_its_own_token(s: Scenario) -> None:
    """Cart reads its own token and calls the API in its own namespace from its own IP."""
    s.falco.token_read(95, CART, proc="node")
    s.audit.request(96, "get", "configmaps", "shop", "cart-flags", pod=CART)
    s.audit.request(97, "list", "pods", "shop", pod=CART)


def ci_build_deploys(s: Scenario) -> None:
    """A build job fetches tools with wget, then deploys to staging with its token."""
    s.audit.request(
        400, "create", "pods", "ci", user=JOB_CONTROLLER, code=201,
        response_name=CI_RUNNER.name, agent=CONTROLLER_MANAGER,
    )  # fmt: skip
    tags = ["container", "maturity_incubating", "mitre_command_and_control", "network"]
    fetch = "wget -q https://dl.k8s.io/release/v1.31.2/bin/linux/amd64/kubectl"
    rule = "Launch Ingress Remote File Copy Tools in Container"
    s.falco.alert(420, CI_RUNNER, rule, "Notice", [*tags, "process", "TA0011"], "wget", fetch)
    for at, verb, code in ((470, "create", 201), (471, "get", 200)):
        s.audit.request(
            at, verb, "deployments", "staging", "shop-frontend", pod=CI_RUNNER, code=code,
            group="apps", agent="kubectl/v1.31.2",
        )  # fmt: skip


def allowlisted_scanner(s: Scenario) -> None:
    """The nightly kube-hunter job sweeps the cluster network (allowlist.yaml)."""
    rule = "LMD Network Scanner Launched in Pod"
    hunt = "kube-hunter --pod --quick"
    s.falco.alert(900, HUNTER, rule, "Warning", DISCOVERY, "kube-hunter", hunt)
    rule = "LMD Tool Connected to Cluster Internal Address"
    for i in range(20):
        ip, port = f"10.0.{i % 6}.{i + 2}", [443, 10250, 2379, 8080][i % 4]
        s.falco.connect(902 + i, HUNTER, rule, DISCOVERY, ip, port, proc="kube-hunter")
    s.audit.request(
        930, "list", "secrets", "kube-system", pod=HUNTER, code=403, agent="kube-hunter"
    )
