"""A small client for the Kubernetes REST API (stdlib HTTPS, JSON bodies, real tokens).

Every answer keeps the ``Audit-Id`` header the API server returns: that is the auditID of
the request's audit events, i.e. the evidence id a chain must cite.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    audit_id: str

    def evidence(self, stage: str = "ResponseComplete") -> str:
        """The detector's id of this request's audit event at ``stage``."""
        return f"{self.audit_id}/{stage}"


class Kube:
    """Requests to one API server as one identity (a bearer token, optionally impersonating).

    ``source_ip`` is the loopback address requests leave from: each pod gets its own
    (127.0.0.0/8 is all local), as pods have their own addresses in a cluster, so the
    detector's IP → pod bindings stay as real as the rest.
    """

    def __init__(
        self,
        port: int,
        tls: ssl.SSLContext,
        token: str,
        impersonate: str = "",
        source_ip: str = "127.0.0.1",
    ) -> None:
        self.port, self.token, self.impersonate = port, token, impersonate
        self.source_ip = source_ip
        self._tls = tls

    @classmethod
    def trusting(cls, port: int, ca: Path, token: str) -> Kube:
        return cls(port, ssl.create_default_context(cafile=str(ca)), token)

    def as_user(self, token: str, source_ip: str = "127.0.0.1") -> Kube:
        return Kube(self.port, self._tls, token, source_ip=source_ip)

    def impersonating(self, user: str) -> Kube:
        return Kube(self.port, self._tls, self.token, user, self.source_ip)

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if self.impersonate:
            headers["Impersonate-User"] = self.impersonate
        return headers

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Reply:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self._tls, source_address=(self.source_ip, 0)
        )
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            audit_id = response.getheader("Audit-Id", "")
        finally:
            connection.close()
        parsed = json.loads(raw) if raw.startswith(b"{") else {"raw": raw.decode(errors="replace")}
        return Reply(response.status, parsed, audit_id)

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any], expect: int = 201) -> Reply:
        reply = self.request("POST", path, body)
        assert reply.status == expect, (path, reply.status, reply.body)
        return reply

    def ready(self, limit_s: float) -> str:
        """Wait for ``/readyz`` 200; returns the last answer when it never came."""
        deadline, last = time.monotonic() + limit_s, "no answer"
        while time.monotonic() < deadline:
            try:
                reply = self.get("/readyz")
                if reply.status == 200:
                    return ""
                last = f"{reply.status} {reply.body}"
            except (OSError, http.client.HTTPException) as exc:
                last = repr(exc)
            time.sleep(0.2)
        return last

    def exec_stream(self, namespace: str, pod: str, command: str, container: str) -> Stream:
        """Open ``pods/exec`` as kubectl does (an SPDY upgrade); the stream stays open."""
        query = urllib.parse.urlencode(
            [("command", command), ("container", container), ("stdin", "true"),
             ("stdout", "true"), ("tty", "true")]
        )  # fmt: skip
        head = (
            f"POST /api/v1/namespaces/{namespace}/pods/{pod}/exec?{query} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in self._headers().items())
            + "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
        )
        raw = socket.create_connection(
            ("127.0.0.1", self.port), timeout=10, source_address=(self.source_ip, 0)
        )
        conn = self._tls.wrap_socket(raw, server_hostname="127.0.0.1")
        conn.sendall(head.encode())
        return Stream(conn, _response_head(conn))


@dataclass
class Stream:
    """An open exec stream: its response head; ``close`` ends the request."""

    conn: ssl.SSLSocket
    head: dict[str, str]

    @property
    def status(self) -> int:
        return int(self.head[":status"])

    @property
    def audit_id(self) -> str:
        return self.head.get("audit-id", "")

    def close(self) -> None:
        self.conn.close()


def read_head(conn: ssl.SSLSocket) -> list[str]:
    """The lines of an HTTP head (request or response), read up to the blank line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")


def _response_head(conn: ssl.SSLSocket) -> dict[str, str]:
    lines = read_head(conn)
    head = {":status": lines[0].split(" ")[1] if " " in lines[0] else "0"}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        head[key.strip().lower()] = value.strip()
    return head
