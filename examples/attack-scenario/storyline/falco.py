"""Falco alerts as ``http_output`` posts them, collected per node.

The document's shape comes from :mod:`synthetic.falco` (shared with the benchmark);
this module picks the scenario's fields. ``evt.time`` and ``time`` end in ``417`` so
the nanoseconds are visibly not just microseconds padded with zeros.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from synthetic import falco
from synthetic.falco import TOKEN_PATH
from synthetic.times import from_datetime

from .pods import NODES, T0, Pod

NANOS = 417  # the alert's nanoseconds below the microsecond


class FalcoLog:
    """Alerts by node, each with its event time for sorting; ``rng`` is the scenario's."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_node: dict[str, list[tuple[datetime, dict[str, Any]]]] = {n: [] for n in NODES}

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
        """One alert ``at`` seconds after T0; ``k8s=False`` is an upstream rule's output."""
        moment = T0 + timedelta(seconds=at, microseconds=self.rng.randrange(1_000_000))
        fields = {**_fields(pod, proc, cmdline, k8s), **extra}
        where = f"(pod={pod.namespace}/{pod.name})" if k8s else f"container_id={pod.container_id}"
        text = f"{rule} user=root process={proc} command={cmdline} {where}"
        time_ns = from_datetime(moment) + NANOS
        doc = falco.alert(time_ns, rule, priority, tags, text, pod.node, fields)
        self.by_node[pod.node].append((moment, doc))

    def token_read(self, at: float, pod: Pod, proc: str = "cat") -> None:
        """Our rule for a process opening the pod's service account token."""
        tags = ["container", "k8s", "mitre_credential_access", "T1528"]
        rule = "LMD Service Account Token Read"
        extra: dict[str, Any] = {"fd.name": TOKEN_PATH, "evt.type": "openat"}
        self.alert(at, pod, rule, "Warning", tags, proc, f"{proc} {TOKEN_PATH}", **extra)

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
        """An outbound TCP connect from ``pod`` to ``ip:port``."""
        sport = 30000 + self.rng.randrange(30000)  # drawn before the alert's own time
        extra = _connect_fields(pod, sport, ip, port, name)
        self.alert(at, pod, rule, "Notice", tags, proc, f"{proc} http://{ip}:{port}/", k8s, **extra)


def _fields(pod: Pod, proc: str, cmdline: str, k8s: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "container.id": pod.container_id,
        "container.name": pod.name.rsplit("-", 1)[0] if k8s else pod.name.split("-")[0],
        **falco.process_fields(proc, cmdline),
    }
    if k8s:  # our LMD rules output these; upstream rules only with append_output
        fields["container.image.repository"] = pod.image
        fields["k8s.ns.name"] = pod.namespace
        fields["k8s.pod.name"] = pod.name
        fields["k8s.pod.uid"] = pod.uid
        fields["k8s.pod.ip"] = pod.ip
    return fields


def _connect_fields(pod: Pod, sport: int, ip: str, port: int, name: str | None) -> dict[str, Any]:
    return {
        **falco.connect_fields(pod.ip, sport, ip, port),
        "fd.rip": ip,
        "fd.rport": port,
        "fd.sip.name": name,
        "fd.type": "ipv4",
    }
