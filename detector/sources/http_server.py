"""The one aiohttp server behind ``--listen``: receivers, health, readiness, metrics.

Receivers (``POST /falco``, ``POST /k8s-audit``, ``POST /events``) plug in as
:class:`Receiver` objects; this module does everything they share, in this order,
cheapest refusal first::

    connection       -> closed at accept        (over max_connections or the per-peer cap,
                                                 or headers not complete in header_timeout_s;
                                                 see :mod:`detector.sources.http_guard`)
    draining?        -> 503 + Retry-After       (SIGTERM received: stop accepting)
    bearer token     -> 401                     (constant-time compare)
    Content-Type     -> 415                     (only application/json)
    queue has room?  -> 429 + Retry-After       (queue_full: refused before reading or decoding;
                                                 503 replaying / intake_log_full, see
                                                 :mod:`detector.delivery.intake`)
    read body        -> 413 / 408 / 503 / 400   (cap, timeouts, budget, Content-Encoding:
                                                 see :mod:`detector.sources.http_body`)
    decode           -> 400 {"error": reason}   (the document itself is broken)
                     -> 413 too_many_events     (more events than the queue can ever hold)
                     -> 429 + Retry-After       (more items than the room left: counted
                                                 before any item is decoded, :class:`NoRoom`)
    offer to queue   -> 429 + Retry-After       (not room for all: enqueue-or-refuse, never wait)
    commit           -> the intake log has the events fsync'd (when configured)
    else             -> 200 {"accepted": n, "rejected": {reason: count}}

Bad *items* of a batch are counted by reason and skipped; the rest are accepted, and the
answer and one summary log line carry the counts (never a line per item).

429 and 503 keep nothing and ask the sender to retry: they are counted as
``detector_http_refused_total{endpoint,reason}``, not as dropped events (the
``detector_dropped_events_total`` counter is for events this process had and lost).
A client that goes away mid-body is one debug line and
``detector_http_connections_closed_total{reason="client_gone"}``.

aiohttp inflates ``Content-Encoding: gzip`` bodies itself and de-chunks chunked
transfers, so the cap applies to the inflated size (a small gzip bomb gets 413 too).
Decoding runs on the event loop in bounded slices (receivers yield between slices), so
``/healthz`` keeps answering while a large batch is decoded.

Exceptions::

    RequestRejected     a 4xx/5xx answer with a JSON reason (status, reason, detail)
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from correlation.event import Incoming
from detector.config import HttpConfig, split_listen
from detector.errors import ParseError, UsageError
from detector.event_time import input_name
from detector.logging import OwnText, get_logger
from detector.metrics import CONTENT_TYPE, Metrics
from detector.sources.base import Emit
from detector.sources.http_body import ClientGone, Held, InflightBudget, RequestRejected, read_body
from detector.sources.http_guard import ConnectionGuard, GuardedSite, check_fd_limit, request_marker
from detector.version import detector_version

__all__ = ["Decoded", "HttpServer", "InflightBudget", "Intake", "NoRoom", "Receiver",
           "RequestRejected"]  # fmt: skip

log = get_logger("detector.http")
# What /readyz reports besides this server: the names not ready (``engine``,
# ``source:<name>``, ``sink:<name>``; any = 503) and sinks whose deliveries are failing
# (shown, but not a reason for 503: the outbox keeps their chains).
Readiness = Callable[[], tuple[list[str], dict[str, str]]]
JSON_TYPES: Final = ("application/json",)


@dataclass
class Decoded:
    """What a receiver made of one body: the events, and what it left out, by reason."""

    events: list[Incoming]  # Events, ticks and the early reject's claims
    rejected: dict[str, int] = field(default_factory=dict)  # bad items (parse errors)
    skipped: dict[str, int] = field(default_factory=dict)  # valid but not events
    body: bytes = b""  # what the events decode from again (the intake log may keep it)


class NoRoom(Exception):
    """A receiver counted more events in a body than the queue has room for right now
    (raised before it decodes them; the server answers as for a full queue)."""

    def __init__(self, events: int) -> None:
        super().__init__(f"{events} events do not fit")
        self.events = events


class Intake(Protocol):
    """Where accepted events go: the bounded queue, behind the intake log when there is one."""

    @property
    def capacity(self) -> int: ...
    def room(self) -> int: ...
    def offer(self, source: str, events: Sequence[Incoming], input: str, body: bytes) -> bool: ...
    def full_reason(self, events: int = 0) -> str: ...
    async def committed(self) -> None: ...


class Receiver(Protocol):
    """One POST endpoint: where it lives, how big a body may be, how to decode it."""

    name: str  # metrics label, e.g. "falco_http"
    path: str
    max_body_bytes: int

    async def decode(self, body: bytes, max_events: int, room: int) -> Decoded:
        """The events in the body; raise :class:`RequestRejected` when the document is
        bad (400) or holds more than ``max_events`` (413), and may raise :class:`NoRoom`
        when it holds more than ``room`` (the queue's room now) before decoding them."""
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
        intake: Intake,
        metrics: Metrics,
        readiness: Readiness = lambda: ([], {}),
    ) -> None:
        self._config, self._intake, self._metrics = config, intake, metrics
        self._routes: list[web.RouteDef] = []
        self._receivers = list(receivers)
        self._readiness = readiness
        self.budget = InflightBudget(config.max_inflight_bytes, metrics)
        self.guard = ConnectionGuard(config, metrics)
        self._listening = False
        self._draining = False
        self.port = 0  # the bound port, known once listening (useful with port 0)
        self.health_port = 0  # the same for http.health_listen

    def ready(self) -> bool:
        return self._listening and not self._draining

    def add_routes(self, routes: Sequence[web.RouteDef]) -> None:
        """More routes on this listener (the incident pages), before it runs."""
        self._routes.extend(routes)

    def stop_accepting(self) -> None:
        """First step of shutdown: /readyz and every POST answer 503 from now on."""
        self._draining = True

    async def run(self, emit: Emit) -> None:
        host, port = split_listen(self._config.listen)
        check_fd_limit(self._config.max_connections)
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self._config.idle_timeout_s,
            lingering_time=0,  # an unread body closes the connection instead of being drained
        )
        await runner.setup()
        try:
            ssl_context = server_ssl_context(self._config)
            site = GuardedSite(runner, host, port, self.guard, ssl_context)
            try:
                await site.start()
            except OSError as exc:  # taken or not ours: a config mistake, said in one line
                problem = f"http.listen: {self._config.listen}: cannot listen: {exc.strerror}"
                raise UsageError(problem, [problem]) from None
            self.port = _bound_port(runner)
            health = await self._health_runner()
            self._listening = True
            log.info(
                "http_listening", host=host, port=self.port, tls=bool(self._config.tls.cert_file)
            )
            try:
                await asyncio.Event().wait()  # serve until cancelled by the supervisor
            finally:
                if health is not None:
                    await health.cleanup()
        finally:
            self._listening = False
            await runner.cleanup()

    async def _health_runner(self) -> web.AppRunner | None:
        """``http.health_listen``: /healthz, /readyz and /metrics on plain HTTP, so kubelet
        probes keep working when the main port requires client certificates."""
        if not self._config.health_listen:
            return None
        host, port = split_listen(self._config.health_listen)
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            problem = f"http.health_listen: {self._config.health_listen}: {exc.strerror}"
            raise UsageError(problem, [problem]) from None
        self.health_port = _bound_port(runner)
        log.info("http_health_listening", host=host, port=self.health_port)
        return runner

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=max([1 << 20, *self._caps()]), middlewares=[request_marker]
        )
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        for receiver in self._receivers:
            app.router.add_post(receiver.path, self._handler(receiver))
        app.router.add_routes(self._routes)
        return app

    def _caps(self) -> list[int]:
        return [r.max_body_bytes for r in self._receivers]

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _json(200, {"status": "ok", "version": detector_version()})

    async def _readyz(self, _request: web.Request) -> web.Response:
        not_ready, failing = self._readiness()
        if not self.ready():
            not_ready = [f"source:{self.name}", *(n for n in not_ready if n != "source:http")]
        self._metrics.ready.set(0 if not_ready else 1)
        body: dict[str, Any] = {"status": "ready"}
        if self._draining:
            body = {"status": "draining"}
        elif not_ready:
            body = {"status": "not ready", "not_ready": not_ready}
        if failing:
            body["sinks_failing"] = failing
        return _json(503 if not_ready else 200, body)

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    def _handler(self, receiver: Receiver) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            try:
                response = await self._receive(receiver, request)
            except RequestRejected as exc:
                response = self._reject(receiver, request, exc)
            except ClientGone:
                self.guard.closed("client_gone", str(request.remote))
                response = _json(400, {"error": "client_gone"})  # nobody reads it
            if not request.content.is_eof():
                # Refused before its body was read: the connection closes after the
                # answer (lingering_time=0), so tell the client not to reuse it.
                response.force_close()
            return response

        return handle

    async def _receive(self, receiver: Receiver, request: web.Request) -> web.Response:
        if self._draining:
            raise RequestRejected(503, "shutting_down", "the detector is stopping")
        self._authorize(request)
        if request.content_type not in JSON_TYPES:
            raise RequestRejected(415, "unsupported_media_type", "send application/json")
        if self._intake.room() <= 0:
            return self._full(receiver, 0)
        held = Held(self.budget)
        try:
            body = await read_body(request, receiver.max_body_bytes, held, self._config)
            decoded = await receiver.decode(body, self._intake.capacity, self._intake.room())
        except NoRoom as exc:
            return self._full(receiver, exc.events)
        finally:
            held.release()
        return await self._enqueue(receiver, decoded, input_name(receiver.name, request.remote))

    async def _enqueue(self, receiver: Receiver, decoded: Decoded, input: str) -> web.Response:
        events = decoded.events
        if len(events) > self._intake.capacity:
            raise RequestRejected(
                413,
                "too_many_events",
                f"{len(events)} events; the queue holds {self._intake.capacity}",
            )
        if not self._intake.offer(receiver.name, events, input, decoded.body):
            return self._full(receiver, len(events))
        await self._intake.committed()
        self._left_out(receiver, decoded)
        answer: dict[str, Any] = {"accepted": len(events)}
        if decoded.rejected:
            answer["rejected"] = decoded.rejected
        return _json(200, answer)

    def _full(self, receiver: Receiver, events: int) -> web.Response:
        """429 when the queue is full; 503 while the intake log's tail is replayed or the
        log is at its bound. Not a drop: nothing was accepted, and the sender is told to
        retry. Whether it does (the API server does, Falco's http_output does not) is
        its business."""
        reason = self._intake.full_reason(events)
        status = 429 if reason == "queue_full" else 503
        self._count(receiver, status)
        self._refused(receiver, reason)
        log.warning("http_refused", endpoint=receiver.path, reason=reason, events=events)
        retry = {"Retry-After": str(self._config.retry_after_s)}
        return _json(status, {"error": reason, "detail": "retry later"}, retry)

    def _left_out(self, receiver: Receiver, decoded: Decoded) -> None:
        """Bad and skipped items: counted by reason, one summary line for the request."""
        for reason, count in decoded.rejected.items():
            self._metrics.parse_errors.labels(source=receiver.name, reason=reason).inc(count)
        for reason, count in decoded.skipped.items():
            self._metrics.drops.labels(reason=f"skipped_{reason}").inc(count)
        if decoded.rejected:
            log.warning(
                "http_items_rejected",
                endpoint=receiver.path,
                accepted=len(decoded.events),
                rejected=decoded.rejected,
            )

    def _authorize(self, request: web.Request) -> None:
        expected = self._config.bearer_token
        if not expected:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # compare_digest: the time taken must not reveal how much of the token matched
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            # OwnText: the log keeps the service's own words ("bearer token" is no secret)
            raise RequestRejected(401, "unauthorized", OwnText("missing or wrong bearer token"))

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


def bad_document(exc: ParseError) -> RequestRejected:
    """A broken document's parse error as its 400 answer (shared by receivers)."""
    return RequestRejected(400, exc.reason, str(exc.args[0]) if exc.args else exc.reason)
