"""A stand-in for a kubelet's streaming endpoint: the one part of a node the tier needs.

No kubelet can run here (no container runtime), and without one ``pods/exec`` fails with
500 at once, so no exec would last longer than the detectors' lateness. This stand-in
answers the API server's exec/attach proxy the way a kubelet does at the HTTP level —
``101 Switching Protocols`` for an SPDY upgrade — and then holds the connection until the
API server (i.e. the client) closes it. It speaks no SPDY frames: the tier needs the
stream's lifetime, not a shell. The API server, its audit stages and the client are real.
"""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from tests.e2e.kube import read_head

if TYPE_CHECKING:
    from tests.e2e.kube import Kube
    from tests.e2e.pki import Pair

NODE = "e2e-node"
SWITCH = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
    b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
)


class StandInKubelet:
    """TLS on 127.0.0.1, a thread per stream; ``requests`` lists the request lines seen."""

    def __init__(self, tls: Pair) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(tls.cert), str(tls.key))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="stand-in-kubelet", daemon=True)

    def __enter__(self) -> StandInKubelet:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def register(self, admin: Kube) -> str:
        """Create the Node whose kubelet this is (InternalIP 127.0.0.1, this port)."""
        return register_node(admin, NODE, self.port)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._stream, args=(raw,), daemon=True).start()

    def _stream(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                request_line = read_head(conn)[0]
                if not request_line:
                    return
                self.requests.append(request_line)
                conn.sendall(SWITCH)
                conn.settimeout(0.5)
                while not self._stop.is_set():  # held open until the far side closes
                    try:
                        if not conn.recv(4096):
                            return
                    except TimeoutError:
                        continue
        except (OSError, ssl.SSLError):
            return


def register_node(admin: Kube, name: str, kubelet_port: int) -> str:
    """A Node at 127.0.0.1 whose kubelet listens on ``kubelet_port`` (or nowhere)."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        },
    }
    admin.create("/api/v1/nodes", node)
    stored = admin.get(f"/api/v1/nodes/{name}").body["metadata"]  # its resourceVersion
    status = admin.request("PUT", f"/api/v1/nodes/{name}/status", {**node, "metadata": stored})
    assert status.status == 200, status.body
    return name
