"""A Falco outputs server built only from the published proto text (run as a subprocess).

Usage: ``python published_server.py GENERATED_DIR SOCKET_PATH COUNT``. GENERATED_DIR holds
modules that grpcio-tools compiled from ``published/*.proto`` at test time; nothing from
the ``detector`` package is imported, so a consumer that reads these alerts proves wire
compatibility independent of the project's own generated modules. Prints ``READY`` once
serving; serves ``sub`` and ``version`` until killed.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any


async def main(generated: str, socket_path: str, count: int) -> None:
    sys.path.insert(0, generated)
    import grpc
    import outputs_pb2  # type: ignore[import-not-found]
    import outputs_pb2_grpc  # type: ignore[import-not-found]
    import schema_pb2  # type: ignore[import-not-found]
    import version_pb2  # type: ignore[import-not-found]
    import version_pb2_grpc  # type: ignore[import-not-found]

    queue: deque[Any] = deque()
    for seq in range(count):
        response = outputs_pb2.response(
            priority=schema_pb2.CRITICAL,
            source_deprecated=schema_pb2.K8S_AUDIT if seq % 2 else schema_pb2.SYSCALL,
            rule="Terminal shell in container",
            output="shell in pod",
            hostname="node-9",
            tags=["shell", "T1059"],
            output_fields={"seq": str(seq), "k8s.ns.name": "prod", "k8s.pod.name": "api-0"},
        )
        response.time.seconds = 1_700_000_100 + seq
        queue.append(response)

    class Outputs(outputs_pb2_grpc.serviceServicer):  # type: ignore[misc]
        async def sub(self, requests: Any, context: Any) -> Any:
            async for _ in requests:
                while queue:
                    yield queue.popleft()

    class Version(version_pb2_grpc.serviceServicer):  # type: ignore[misc]
        async def version(self, request: Any, context: Any) -> Any:
            return version_pb2.response(version="0.42.0", major=0, minor=42)

    server = grpc.aio.server()
    outputs_pb2_grpc.add_serviceServicer_to_server(Outputs(), server)
    version_pb2_grpc.add_serviceServicer_to_server(Version(), server)
    server.add_insecure_port(f"unix://{socket_path}")
    await server.start()
    print("READY", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
