"""The one aiohttp server behind ``--listen``: receivers, health, readiness, metrics.

Receivers (``POST /falco``, ``POST /k8s-audit``) plug in as :class:`Receiver` objects;
this module does everything they share, in this order, cheapest refusal first::

    draining?        -> 503 + Retry-After      (SIGTERM received: stop accepting)
    bearer token     -> 401                     (constant-time compare)
    Content-Type     -> 415                     (only application/json)
    Content-Length   -> 413, body never read    (over the receiver's cap)
    in-flight budget -> 503 + Retry-After       (over_budget: Content-Length reserved first)
    read body        -> 413 as soon as the cap is passed (chunked / gzip-inflated)
    decode           -> 400 {"error": reason}   (receiver's parser)
    offer to queue   -> 429 + Retry-After       (full: enqueue-or-refuse, never wait)
    else             -> 200 {"accepted": n}

429 and 503 keep nothing and ask the sender to retry: they are counted as
``detector_http_refused_total{endpoint,reason}``, not as dropped events (the
``detector_dropped_events_total`` counter is for events this process had and lost).

aiohttp inflates ``Content-Encoding: gzip`` bodies itself and de-chunks chunked
transfers, so the cap applies to the inflated size (a small gzip bomb gets 413 too).

The per-request cap alone still lets N senders hold N × 16 MiB at once, before the queue
limit can say no. :class:`InflightBudget` bounds the body bytes of all requests being
read or decoded (``http.max_inflight_bytes``): a request reserves its Content-Length
before reading (chunked or inflated bodies are charged as they grow) and gives it back
when answered. Decoded events cost a multiple of their bytes, so this bounds that too.

Exceptions::

    RequestRejected     a 4xx/5xx answer with a JSON reason (status, reason, detail)
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from correlation.event import Event
from detector.config import HttpConfig, split_listen
from detector.event_time import input_name
from detector.logging import get_logger
from detector.metrics import CONTENT_TYPE, Metrics
from detector.sources.base import Emit

log = get_logger("detector.http")
# (receiver name, events, input): the input names the sender (see detector.event_time)
Offer = Callable[[str, Sequence[Event], str], bool]
JSON_TYPES: Final = ("application/json",)
_READ_CHUNK: Final = 64 * 1024


class InflightBudget:
    """Body bytes reserved by the requests in progress; refuses beyond ``limit``."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit, self.used, self._metrics = limit, 0, metrics

    def take(self, size: int) -> None:
        """Reserve ``size`` bytes more, or raise 503 ``over_budget``."""
        if self.used + size > self.limit:
            raise RequestRejected(503, "over_budget", "too many request bytes in flight")
        self.used += size
        self._metrics.http_inflight_bytes.set(self.used)

    def give(self, size: int) -> None:
        self.used -= size
        self._metrics.http_inflight_bytes.set(self.used)


class _Held:
    """One request's share of the budget (given back in ``finally``)."""

    def __init__(self, budget: InflightBudget) -> None:
        self.budget, self.size = budget, 0

    def grow_to(self, size: int) -> None:
        if size > self.size:
            self.budget.take(size - self.size)
            self.size = size

    def release(self) -> None:
        self.budget.give(self.size)
        self.size = 0


class RequestRejected(Exception):
    """An HTTP error answer: ``status``, a snake_case ``reason`` and a human ``detail``."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{status} {reason}: {detail}")
        self.status, self.reason, self.detail = status, reason, detail


class Receiver(Protocol):
    """One POST endpoint: where it lives, how big a body may be, how to decode it."""

    name: str  # metrics label, e.g. "falco_http"
    path: str
    max_body_bytes: int

    def decode(self, body: bytes) -> list[Event]:
        """Events in the body; raise :class:`RequestRejected` (400) when it is bad."""
        ...


def server_ssl_context(config: HttpConfig) -> ssl.SSLContext | None:
    """TLS (and mTLS when ``client_ca_file`` is set) for the listener, or None."""
    tls = config.tls
    if not tls.cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(cafile=tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class HttpServer:
    """A :class:`~detector.sources.base.Source` that serves every receiver on one port.

    Receivers must answer fast, so they do not use ``emit`` (which waits for queue
    space); they call ``offer`` (all events of a request or none) and refuse with 429.
    """

    name = "http"

    def __init__(
        self,
        config: HttpConfig,
        receivers: Sequence[Receiver],
        offer: Offer,
        metrics: Metrics,
        readiness: Callable[[], bool] = lambda: True,
    ) -> None:
        self._config, self._offer, self._metrics = config, offer, metrics
        self._receivers = list(receivers)
        self._readiness = readiness
        self.budget = InflightBudget(config.max_inflight_bytes, metrics)
        self._listening = False
        self._draining = False
        self.port = 0  # the bound port, known once listening (useful with port 0)

    def ready(self) -> bool:
        return self._listening and not self._draining

    def stop_accepting(self) -> None:
        """First step of shutdown: /readyz and every POST answer 503 from now on."""
        self._draining = True

    async def run(self, emit: Emit) -> None:
        host, port = split_listen(self._config.listen)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=server_ssl_context(self._config))
            await site.start()
            self.port = _bound_port(runner)
            self._listening = True
            log.info(
                "http_listening", host=host, port=self.port, tls=bool(self._config.tls.cert_file)
            )
            await asyncio.Event().wait()  # serve until cancelled by the supervisor
        finally:
            self._listening = False
            await runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=max([1 << 20, *self._caps()]))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        for receiver in self._receivers:
            app.router.add_post(receiver.path, self._handler(receiver))
        return app

    def _caps(self) -> list[int]:
        return [r.max_body_bytes for r in self._receivers]

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        ok = self.ready() and self._readiness()
        self._metrics.ready.set(1 if ok else 0)
        if ok:
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "draining" if self._draining else "not ready"})

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    def _handler(self, receiver: Receiver) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            try:
                return await self._receive(receiver, request)
            except RequestRejected as exc:
                return self._reject(receiver, request, exc)

        return handle

    async def _receive(self, receiver: Receiver, request: web.Request) -> web.Response:
        if self._draining:
            raise RequestRejected(503, "shutting_down", "the detector is stopping")
        self._authorize(request)
        if request.content_type not in JSON_TYPES:
            raise RequestRejected(415, "unsupported_media_type", "send application/json")
        held = _Held(self.budget)
        try:
            body = await _read_capped(request, receiver, held)
            return self._enqueue(receiver, body, input_name(receiver.name, request.remote))
        finally:
            held.release()

    def _enqueue(self, receiver: Receiver, body: bytes, input: str) -> web.Response:
        retry = {"Retry-After": str(self._config.retry_after_s)}
        events = receiver.decode(body)
        if not self._offer(receiver.name, events, input):
            # Not a drop: nothing was accepted, and the sender is told to retry. Whether
            # it does (the API server does, Falco's http_output does not) is its business.
            self._count(receiver, 429)
            self._refused(receiver, "queue_full")
            log.warning(
                "http_refused", endpoint=receiver.path, reason="queue_full", events=len(events)
            )
            return _json(429, {"error": "queue_full", "detail": "retry later"}, retry)
        return _json(200, {"accepted": len(events)})

    def _authorize(self, request: web.Request) -> None:
        expected = self._config.bearer_token
        if not expected:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not reveal how much of the token matched
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise RequestRejected(401, "unauthorized", "missing or wrong bearer token")

    def _reject(
        self, receiver: Receiver, request: web.Request, exc: RequestRejected
    ) -> web.Response:
        self._count(receiver, exc.status)
        if exc.status == 400:
            self._metrics.parse_errors.labels(source=receiver.name, reason=exc.reason).inc()
        headers = {"Retry-After": str(self._config.retry_after_s)} if exc.status == 503 else {}
        if exc.status == 503:
            self._refused(receiver, exc.reason)
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        log.warning(
            "http_rejected",
            endpoint=receiver.path,
            status=exc.status,
            reason=exc.reason,
            detail=exc.detail,
            peer=request.remote,
        )
        return _json(exc.status, {"error": exc.reason, "detail": exc.detail}, headers)

    def _count(self, receiver: Receiver, status: int) -> None:
        self._metrics.http_rejects.labels(endpoint=receiver.path, status=str(status)).inc()

    def _refused(self, receiver: Receiver, reason: str) -> None:
        self._metrics.http_refused.labels(endpoint=receiver.path, reason=reason).inc()


async def _read_capped(request: web.Request, receiver: Receiver, held: _Held) -> bytes:
    """The body, refusing with 413 before reading when Content-Length says it is too big,
    and with 503 when the in-flight budget cannot take it."""
    cap = receiver.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise RequestRejected(413, "body_too_large", f"limit is {cap} bytes")
    held.grow_to(request.content_length or 0)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > cap:
            raise RequestRejected(413, "body_too_large", f"limit is {cap} bytes")
        held.grow_to(size)  # chunked or gzip-inflated: charged as it grows
        chunks.append(chunk)
    return b"".join(chunks)


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(payload),
        content_type="application/json",
        headers=headers,
    )


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    return 0


def decode_json(body: bytes) -> Any:
    """``orjson.loads`` with a 400 ``malformed_json`` on failure (shared by receivers)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, "malformed_json", str(exc)) from None
