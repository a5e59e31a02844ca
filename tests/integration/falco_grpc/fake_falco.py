"""A gRPC server that behaves like Falco's (<= 0.43) outputs and version services.

Built from the project's generated modules. Like Falco it keeps one shared queue of
alerts that every ``get``/``sub`` handler pops from, so a restarted server (a new
:class:`FakeFalco` given the same deque) still holds whatever was not yet sent:

* ``sub``: for each request read, write everything queued, then wait for the next request;
* ``get``: write everything queued, then end the stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc

from detector.proto import outputs_pb2, outputs_pb2_grpc, version_pb2, version_pb2_grpc


def alert(seq: int, pad: int = 0) -> outputs_pb2.response:
    """A Falco-like response; ``output_fields['seq']`` numbers it for order checks."""
    response = outputs_pb2.response(
        priority="Warning",
        rule="Launch Suspicious Network Tool in Container",
        output="nmap in pod" + "x" * pad,
        hostname="node-1",
        tags=["maturity_incubating", "mitre_discovery", "T1046"],
        source="syscall",
        output_fields={
            "seq": str(seq),
            "k8s.ns.name": "shop",
            "k8s.pod.name": "web-1",
            "container.id": "abc123def456",
            "proc.name": "nmap",
        },
    )
    response.time.seconds = 1_700_000_000 + seq
    response.time.nanos = 123_456_789
    return response


class FakeFalco(outputs_pb2_grpc.serviceServicer):
    """The outputs service over a shared queue; counts the requests it reads."""

    def __init__(self, queue: deque[outputs_pb2.response]) -> None:
        self.queue = queue
        self.requests = 0
        self.sent = 0

    async def sub(
        self, request_iterator: AsyncIterator[outputs_pb2.request], context: Any
    ) -> AsyncIterator[outputs_pb2.response]:
        async for _ in request_iterator:
            self.requests += 1
            while self.queue:
                self.sent += 1
                yield self.queue.popleft()

    async def get(
        self, request: outputs_pb2.request, context: Any
    ) -> AsyncIterator[outputs_pb2.response]:
        while self.queue:
            self.sent += 1
            yield self.queue.popleft()


class FakeVersion(version_pb2_grpc.serviceServicer):
    """Falco 0.43.1's version answer."""

    async def version(self, request: version_pb2.request, context: Any) -> version_pb2.response:
        return version_pb2.response(
            version="0.43.1", major=0, minor=43, patch=1, engine_version="0.52.0"
        )


async def serve(
    falco: FakeFalco, address: str, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.aio.Server, int]:
    """Start a server on ``address`` (``unix:`` or ``HOST:0``); returns it and the bound port."""
    server = grpc.aio.server()
    outputs_pb2_grpc.add_serviceServicer_to_server(falco, server)
    version_pb2_grpc.add_serviceServicer_to_server(FakeVersion(), server)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    return server, port


def mtls_server_credentials(ca: bytes, cert: bytes, key: bytes) -> grpc.ServerCredentials:
    """Like Falco off the unix socket: client certificate required and verified."""
    pairs = [(key, cert)]
    return grpc.ssl_server_credentials(pairs, root_certificates=ca, require_client_auth=True)
