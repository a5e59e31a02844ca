"""What one connection may hold, enforced below aiohttp: connection caps and a header deadline.

aiohttp's keep-alive timer (``http.idle_timeout_s``) already closes a connection that
waits for its next request, a new one that sends nothing included. What it lacks is added
here, by wrapping each connection's aiohttp protocol in :class:`_Guarded`::

    accept ─► total open < max_connections?           no ─► 503 + close, reason over_capacity
           ─► open from this IP < ..._per_peer?        no ─► 503 + close, reason peer_cap
           ─► first byte of a request ─► handler must start within header_timeout_s
                                           (a client sending one header byte a second
                                            is closed, reason header_timeout)

A refused connection gets a 503 JSON answer with Retry-After, written before any request
is read, and is closed at once rather than left in the backlog: the listening
socket keeps draining, so a flood of idle sockets never pushes the process to its file
descriptor limit (``EMFILE`` on ``accept`` is what stalled every client before).
:func:`check_fd_limit` raises the soft limit toward the hard one at start and warns
when it still cannot cover ``max_connections`` plus the process's own files.

Every close is counted in ``detector_http_connections_closed_total{reason}``.
"""

from __future__ import annotations

import asyncio
import resource
import ssl
from collections import Counter
from collections.abc import Callable
from typing import Any, Final, cast

from aiohttp import web

from detector.config import HttpConfig
from detector.logging import get_logger
from detector.metrics import Metrics

log = get_logger("detector.http")
# Files the process needs besides client sockets: outbox, checkpoint, intake log
# segments, gRPC and Kafka clients, the listening socket, logs.
FD_RESERVE: Final = 128


class ConnectionGuard:
    """Counts open connections (total and per peer) and builds guarded protocols."""

    def __init__(self, config: HttpConfig, metrics: Metrics) -> None:
        self._config, self._metrics = config, metrics
        self.open = 0
        self._per_peer: Counter[str] = Counter()

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for ``create_server``: aiohttp's protocol, guarded."""
        return lambda: _Guarded(make(), self)

    def admit(self, peer: str) -> str:
        """Take a slot for ``peer``; the refusal reason, or "" when admitted."""
        if self.open >= self._config.max_connections:
            return "over_capacity"
        if self._per_peer[peer] >= self._config.max_connections_per_peer:
            return "peer_cap"
        self.open += 1
        self._per_peer[peer] += 1
        return ""

    def release(self, peer: str) -> None:
        self.open -= 1
        self._per_peer[peer] -= 1
        if not self._per_peer[peer]:
            del self._per_peer[peer]

    def closed(self, reason: str, peer: str) -> None:
        self._metrics.http_connections_closed.labels(reason=reason).inc()
        log.debug("http_connection_closed", reason=reason, peer=peer)

    @property
    def header_timeout_s(self) -> float:
        return self._config.header_timeout_s

    @property
    def retry_after_s(self) -> int:
        return self._config.retry_after_s


def _refusal(reason: str, retry_after_s: int) -> bytes:
    """A whole 503 answer, written before any request is read (then the socket closes)."""
    body = b'{"error":"%s","detail":"too many connections; retry later"}' % reason.encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Retry-After: {retry_after_s}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Guarded(asyncio.Protocol):
    """aiohttp's per-connection protocol behind the caps and the header deadline.

    ``busy`` is set by :func:`request_marker` while a handler runs; bytes that arrive while
    the connection is not busy belong to the next request's headers and start the clock.
    """

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner, self._guard = inner, guard
        self._peer = ""
        self._admitted = False
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if isinstance(peer, tuple) else "local"
        self._transport = transport = cast(asyncio.Transport, transport)
        refused = self._guard.admit(self._peer)
        if refused:
            self._guard.closed(refused, self._peer)
            transport.write(_refusal(refused, self._guard.retry_after_s))
            transport.close()
            return
        self._admitted = True
        _GUARDED[id(transport)] = self
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy and self._deadline is None:
            loop = asyncio.get_running_loop()
            self._deadline = loop.call_later(self._guard.header_timeout_s, self._too_slow)
        self._inner.data_received(data)

    def request_started(self) -> None:
        self.busy = True
        self._cancel_deadline()

    def request_finished(self) -> None:
        self.busy = False

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.busy and self._transport is not None:
            self._guard.closed("header_timeout", self._peer)
            self._transport.abort()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if not self._admitted:
            return
        self._admitted = False
        _GUARDED.pop(id(self._transport), None)
        self._guard.release(self._peer)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


# Open guarded connections by transport id: how a handler finds its connection.
_GUARDED: dict[int, _Guarded] = {}


@web.middleware
async def request_marker(request: web.Request, handler: Any) -> web.StreamResponse:
    """Marks the connection busy while a handler runs (stops the header deadline)."""
    guarded = _GUARDED.get(id(request.transport))
    if guarded is not None:
        guarded.request_started()
    try:
        response: web.StreamResponse = await handler(request)
        return response
    finally:
        if guarded is not None:
            guarded.request_finished()


class GuardedSite(web.TCPSite):
    """A TCP listener whose connections go through a :class:`ConnectionGuard`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=1024)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site; TCPSite.start would bind unguarded
        server = self._runner.server
        if server is None:
            raise RuntimeError("runner.setup() must run before the site starts")
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


def check_fd_limit(max_connections: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` toward the hard limit if it is too low for
    ``max_connections``; warn when it still is. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < want:
        log.warning(
            "fd_limit_low",
            soft_limit=soft,
            needed=want,
            detail="lower http.max_connections or raise the open-files limit",
        )
    return soft
