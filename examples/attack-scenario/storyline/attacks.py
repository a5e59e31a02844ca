"""The six chains of the scenario, one function per story (README.md tells them).

P → Q → R is frontend → payments-api → report-sync: the first three stories are one
intrusion moving through three pods. Times are seconds after T0; the order of the
calls fixes the RNG draws, so it is kept as the files were first generated.
"""

from __future__ import annotations

from typing import Any

from .pods import CHECKOUT, ETL, FRONTEND, NOTEBOOK, PAYMENTS_API, REPORT_SYNC
from .scenario import Scenario

DISCOVERY = ["container", "network", "mitre_discovery", "T1046"]
CURL = "curl/8.5.0"
EXEC_QUERY = (
    "command=sh&command=-c&command=id%3Bcat+%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io"
    "%2Fserviceaccount%2Ftoken&container=api&stdin=true&stdout=true"
)


def attacks(s: Scenario) -> None:
    """Every story, in the order their events were first drawn."""
    recon_token_pivot(s)
    exec_pivot(s)
    workload_pivot(s)
    stolen_token_replay(s)
    imds_credential_theft(s)
    internal_fanout(s)


def recon_token_pivot(s: Scenario) -> None:
    """The frontend pod is compromised through a web RCE (minute 3) and looks around."""
    scan = "nmap -sT -p 443,6443,8080 10.0.0.0/16"
    rule = "LMD Network Scanner Launched in Pod"
    s.falco.alert(180, FRONTEND, rule, "Warning", DISCOVERY, "nmap", scan)
    s.falco.token_read(200, FRONTEND)
    s.audit.request(215, "list", "secrets", "payments", pod=FRONTEND, code=403, agent=CURL)
    s.audit.request(221, "list", "pods", "payments", pod=FRONTEND, agent=CURL)


def exec_pivot(s: Scenario) -> None:
    """Frontend's SA may exec into payments pods (an over-broad RoleBinding)."""
    s.audit.request(
        260, "create", "pods", "payments", PAYMENTS_API.name, pod=FRONTEND, code=101,
        sub="exec", query=EXEC_QUERY, agent=CURL, stages=("ResponseStarted", "ResponseComplete"),
    )  # fmt: skip
    shell = "sh -c id;cat /var/run/secrets/kubernetes.io/serviceaccount/token"
    tags = ["container", "maturity_stable", "mitre_execution", "shell", "T1059"]
    terminal: dict[str, Any] = {"proc.pname": "runc", "proc.tty": 34816}
    s.falco.alert(
        261, PAYMENTS_API, "Terminal shell in container", "Notice", tags, "sh", shell, **terminal
    )
    s.falco.token_read(262, PAYMENTS_API)


def workload_pivot(s: Scenario) -> None:
    """payments-api's token starts a job in the data namespace; its pod scans."""
    s.audit.request(
        330, "create", "jobs", "data", pod=PAYMENTS_API, code=201, group="batch",
        response_name="report-sync", agent=CURL,
    )  # fmt: skip
    s.audit.request(
        331, "create", "pods", "data", user="system:serviceaccount:kube-system:job-controller",
        code=201, response_name=REPORT_SYNC.name, agent="kube-controller-manager/v1.31.2",
    )  # fmt: skip
    scan = "nc -zv 10.0.2.0/24 5432"
    rule = "LMD Netcat or Socat Listen or Scan in Pod"
    s.falco.alert(352, REPORT_SYNC, rule, "Warning", DISCOVERY, "nc", scan)
    # the upstream rule for the same process: no k8s fields, only the container id
    tags = ["container", "maturity_incubating", "mitre_execution", "network", "process", "T1059"]
    rule = "Launch Suspicious Network Tool in Container"
    s.falco.alert(355, REPORT_SYNC, rule, "Notice", tags, "nc", scan, k8s=False)


def stolen_token_replay(s: Scenario) -> None:
    """Checkout's token, read in the pod, is replayed from outside the cluster."""
    s.falco.token_read(420, CHECKOUT, proc="python3")
    outside = "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46"
    s.audit.request(
        540, "list", "secrets", "shop", pod=CHECKOUT, ips=["198.51.100.23"], agent=outside
    )


def imds_credential_theft(s: Scenario) -> None:
    """The ETL worker hits the metadata service, then greps for keys."""
    tags = ["container", "network", "aws", "mitre_credential_access", "T1552.005"]
    rule = "LMD Cloud Metadata Service Contacted"
    s.falco.connect(600, ETL, rule, tags, "169.254.169.254", 80)
    tags = ["host", "container", "maturity_stable", "mitre_credential_access", "process", "aws"]
    grep = "grep -r aws_secret_access_key /home /root"
    s.falco.alert(
        640, ETL, "Find AWS Credentials", "Warning", [*tags, "T1552"], "grep", grep, k8s=False
    )


def internal_fanout(s: Scenario) -> None:
    """The notebook sweeps 12 internal services in 40 seconds."""
    rule = "LMD Tool Connected to Cluster Internal Address"
    for i in range(12):
        ip, port = f"10.0.{2 + i % 3}.{10 + i}", [80, 443, 5432, 6379][i % 4]
        s.falco.connect(720 + i * 3.3, NOTEBOOK, rule, DISCOVERY, ip, port, proc="python3")
