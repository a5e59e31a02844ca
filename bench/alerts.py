"""The Falco rules the generator fires, with their real names, priorities and tags.

Two families: this project's own rules (``LMD …``, MITRE id in the tags) and upstream
falcosecurity/rules rules, some of which cover the same behaviour and some of which are
unrelated to lateral movement (they make up the benign Falco noise).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from bench.cluster import Pod
from bench.formats import TOKEN_PATH, connect_fields, pod_fields, process_fields
from synthetic import falco


class FalcoRule(NamedTuple):
    name: str
    priority: str
    tags: tuple[str, ...]
    message: str


_LMD: Final = ("maturity_incubating", "k8s_lateral_movement")
RULES: Final = {
    "scanner": FalcoRule(
        "LMD Network Scanner Launched in Pod", "Warning",
        (*_LMD, "network", "mitre_discovery", "T1046"), "Network scanner launched in pod",
    ),
    "netcat": FalcoRule(
        "LMD Netcat or Socat Listen or Scan in Pod", "Warning",
        (*_LMD, "network", "mitre_discovery", "T1046"), "Netcat or socat scan in pod",
    ),
    "internal": FalcoRule(
        "LMD Tool Connected to Cluster Internal Address", "Notice",
        (*_LMD, "network", "mitre_discovery", "T1046"), "Tool connected to internal address",
    ),
    "k8s_api": FalcoRule(
        "LMD Tool Connected to Kubernetes API", "Notice",
        (*_LMD, "network", "mitre_discovery", "T1613"), "Tool connected to the Kubernetes API",
    ),
    "imds": FalcoRule(
        "LMD Cloud Metadata Service Contacted", "Warning",
        (*_LMD, "network", "mitre_credential_access", "T1552.005"), "Cloud metadata contacted",
    ),
    "token": FalcoRule(
        "LMD Service Account Token Read", "Warning",
        (*_LMD, "filesystem", "mitre_credential_access", "T1528"), "Service account token read",
    ),
    "up_shell": FalcoRule(
        "Terminal shell in container", "Notice",
        ("maturity_stable", "container", "shell", "mitre_execution", "T1059"),
        "A shell was spawned in a container with an attached terminal",
    ),
    "up_nettool": FalcoRule(
        "Launch Suspicious Network Tool in Container", "Notice",
        ("maturity_incubating", "container", "network", "process", "mitre_discovery", "T1046"),
        "Network tool launched in container",
    ),
    "up_imds": FalcoRule(
        "Contact EC2 Instance Metadata Service From Container", "Notice",
        ("maturity_incubating", "network", "aws", "container", "mitre_credential_access",
         "T1552.005"),
        "Outbound connection to EC2 instance metadata service",
    ),
    "up_aws_creds": FalcoRule(
        "Find AWS Credentials", "Warning",
        ("maturity_stable", "host", "container", "aws", "mitre_credential_access", "T1552"),
        "Detected AWS credentials search activity",
    ),
    "up_sensitive": FalcoRule(
        "Read sensitive file untrusted", "Warning",
        ("maturity_stable", "host", "container", "filesystem", "mitre_credential_access",
         "T1555"),
        "Sensitive file opened for reading by non-trusted program",
    ),
    "up_drop_exec": FalcoRule(
        "Drop and execute new binary in container", "Critical",
        ("maturity_stable", "container", "process", "mitre_persistence", "TA0003",
         "PCI_DSS_11.5.1"),
        "Executing binary not part of base image",
    ),
    "up_clear_log": FalcoRule(
        "Clear Log Activities", "Warning",
        ("maturity_stable", "host", "container", "filesystem", "mitre_defense_evasion", "T1070"),
        "Log files were tampered",
    ),
}  # fmt: skip
NOISE_RULES: Final = ("up_sensitive", "up_drop_exec", "up_clear_log")


def alert(
    key: str, time_ns: int, pod: Pod, fields: dict[str, Any], with_k8s: bool = True
) -> dict[str, Any]:
    """An alert of rule ``key`` fired in ``pod``, with ``fields`` added to output_fields."""
    rule = RULES[key]
    all_fields = {**pod_fields(pod, with_k8s), **fields}
    message = f"{rule.message} (pod={pod.name} ns={pod.namespace} proc={fields.get('proc.name')})"
    return falco.alert(time_ns, rule.name, rule.priority, rule.tags, message, pod.node, all_fields)


def exec_alert(key: str, time_ns: int, pod: Pod, proc: str, cmdline: str) -> dict[str, Any]:
    return alert(key, time_ns, pod, process_fields(proc, cmdline))


def connect_alert(
    key: str, time_ns: int, pod: Pod, proc: str, ip: str, port: int
) -> dict[str, Any]:
    fields = {
        **process_fields(proc, f"{proc} http://{ip}:{port}/"),
        **connect_fields(pod, ip, port),
    }
    return alert(key, time_ns, pod, fields)


def token_read_alert(time_ns: int, pod: Pod, proc: str = "cat") -> dict[str, Any]:
    fields = {**process_fields(proc, f"{proc} {TOKEN_PATH}"), "fd.name": TOKEN_PATH}
    fields["evt.type"] = "openat"
    return alert("token", time_ns, pod, fields)
