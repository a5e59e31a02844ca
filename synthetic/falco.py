"""Falco alerts as ``http_output`` posts them (and ``json_output`` writes them).

Falco serialises with nlohmann::json's sorted map, so every object has its keys in
sorted order; rule tags are a set, so they come out sorted too. ``time`` has 9
fractional digits, ``output`` starts with the time of day and the priority, and
``output_fields`` holds the fields the rule's output names, typed (``evt.time`` as
integer nanoseconds). Which fields a rule outputs is the caller's choice: the helpers
below give the ones every process or connect rule of these generators prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from synthetic.times import clock, nanos

TOKEN_PATH: Final = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 (a path)


def alert(
    time_ns: int,
    rule: str,
    priority: str,
    tags: Iterable[str],
    text: str,
    hostname: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """One alert; ``output`` is ``"<time of day>: <priority> <text>"``."""
    output_fields = dict(sorted({**fields, "evt.time": time_ns}.items()))
    return {
        "hostname": hostname,
        "output": f"{clock(time_ns)}: {priority} {text}",
        "output_fields": output_fields,
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "tags": sorted(tags),
        "time": nanos(time_ns),
    }


def process_fields(
    proc: str, cmdline: str, parent: str = "sh", user: str = "root"
) -> dict[str, Any]:
    """The process part of an exec alert's ``output_fields``."""
    return {
        "evt.type": "execve",
        "proc.cmdline": cmdline,
        "proc.name": proc,
        "proc.pname": parent,
        "proc.tty": 0,
        "user.loginuid": -1,
        "user.name": user,
    }


def connect_fields(
    client_ip: str, client_port: int, server_ip: str, server_port: int
) -> dict[str, Any]:
    """The socket part of an outbound TCP ``connect`` alert's ``output_fields``."""
    return {
        "evt.type": "connect",
        "fd.cip": client_ip,
        "fd.l4proto": "tcp",
        "fd.name": f"{client_ip}:{client_port}->{server_ip}:{server_port}",
        "fd.sip": server_ip,
        "fd.sport": server_port,
    }
