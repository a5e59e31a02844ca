"""Falco gRPC outputs consumer (``falco.outputs.service``), for Falco <= 0.43.

Falco deprecated its gRPC output in 0.43 and removed it in 0.44; on current Falco use the
HTTP receiver (``http_output``). This source exists for clusters pinned to an older Falco.

Protocol facts that shape the code (Falco's ``grpc_server.cpp``):

* ``sub`` is bidirectional. After each request it reads, Falco drains its alert queue
  into the stream and then waits for the *next* request, so the client keeps sending
  empty requests: every ``keepalive_s`` while alerts flow, backing off to
  ``keepalive_idle_s`` when a request brought nothing.
* Flow control: a new request is sent only when the reader is waiting on the stream,
  i.e. ``emit`` (which awaits on the engine's bounded queue) has taken everything that
  arrived. A slow consumer therefore stops asking; Falco keeps the alerts in its own
  queue and HTTP/2 flow control bounds what is in flight. Nothing piles up here.
* ``get`` writes what is queued and ends the stream: a one-shot drain (``mode: get``).
* Falco's queue is process-global: two consumers *split* the alerts, they do not each
  get a copy. Run one consumer per Falco.
* Falco keeps nothing it has written to a stream: from then on this process holds the
  only copy. With the intake log (``intake`` given, see :mod:`detector.delivery.intake`)
  each alert is offered to it whole (waiting while it has no room, e.g. while the log's
  tail is replayed at start), and the next request, the stream's only acknowledgement,
  is sent only once everything received so far is fsync'd (one group commit per request
  round). A ``kill -9`` then loses at most what was in flight since the last request;
  everything before it is replayed from the log at restart. ``get`` has no request to
  hold back: its one commit is at the end of the drain, so a kill during a drain loses
  what arrived in it.

Connection life cycle::

    connect -> version call (deadline) -> sub/get stream ... error or end of stream
       ^                                                              |
       +------ sleep Backoff.next_delay() (full jitter, capped) <------+

Logs are per state change (``connected``, ``disconnected`` with the gRPC status and a
hint), not per retry; every failed attempt is counted. Key material and file contents
are never logged, only paths. Errors: none escape :meth:`FalcoGrpcSource.run` except
cancellation and exceptions from ``emit`` itself; ``FalcoGrpcConfig`` validation raises
``ValueError`` naming the key (msgspec reports it with the config path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol

import grpc
import msgspec
import structlog

from correlation.event import Event
from detector.errors import ParseError, SkippedInput
from detector.parse import parse_falco
from detector.proto import outputs_pb2, version_pb2
from detector.sources.backoff import Backoff
from detector.sources.base import Emit
from detector.sources.falco_grpc_wire import (
    UNIX_PREFIX,
    is_unix,
    open_channel,
    outputs_get,
    outputs_sub,
    response_to_alert,
    split_host_port,
    version_call,
)

log = structlog.get_logger(__name__)

DEFAULT_ENDPOINT: Final = "unix:///run/falco/falco.sock"
DEPRECATION: Final = (
    "Falco deprecated gRPC output in 0.43 and removed it in 0.44; this consumer works with "
    "Falco <= 0.43 only. On current Falco use http_output and the HTTP receiver."
)
Parse = Callable[[Mapping[str, Any]], Event]
_ROOM_POLL_S: Final = 0.01  # waiting for the intake's room (it has no "room" signal)
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class FalcoGrpcConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``sources.falco_grpc``: where Falco's gRPC server is and how to talk to it."""

    endpoint: str = ""  # "" = source disabled; unix:///path or HOST:PORT (mTLS)
    ca: str = ""  # PEM CA that signed Falco's server certificate (TCP only)
    cert: str = ""  # PEM client certificate (TCP only)
    key: str = ""  # PEM client private key (TCP only); only its path is ever logged
    server_name: str = ""  # TLS name to verify instead of the endpoint host
    mode: Literal["sub", "get"] = "sub"
    keepalive_s: Seconds = 0.1
    keepalive_idle_s: Seconds = 1.0
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0
    connect_timeout_s: Seconds = 5.0

    def __post_init__(self) -> None:
        if self.keepalive_idle_s < self.keepalive_s:
            raise ValueError("keepalive_idle_s: must be >= keepalive_s")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s: must be >= backoff_initial_s")
        if self.endpoint and not is_unix(self.endpoint):
            self._check_tcp()
        elif self.endpoint == UNIX_PREFIX:
            raise ValueError(f"endpoint: unix:// needs a socket path, e.g. {DEFAULT_ENDPOINT}")

    def _check_tcp(self) -> None:
        try:
            split_host_port(self.endpoint)
        except ValueError as exc:
            raise ValueError(f"endpoint: {exc}") from None
        missing = [name for name in ("ca", "cert", "key") if not getattr(self, name)]
        if missing:
            raise ValueError(
                f"{', '.join(missing)}: a TCP endpoint needs ca, cert and key "
                "(Falco's gRPC server requires mutual TLS off the unix socket)"
            )

    @property
    def enabled(self) -> bool:
        """True when an endpoint is configured."""
        return bool(self.endpoint)


class FalcoGrpcMetrics(Protocol):
    """What the source reports; the service adapts it to Prometheus (``detector.metrics``)."""

    def event_in(self) -> None: ...
    def parse_error(self, reason: str) -> None: ...
    def reconnect(self) -> None: ...


class LoggedIntake(Protocol):
    """The intake's door as this source uses it (:class:`detector.delivery.intake.Intake`)."""

    def offer(self, source: str, events: Sequence[Event], input: str = "") -> bool: ...
    async def committed(self) -> None: ...


class FalcoGrpcStats:
    """Plain counters kept by every source instance (also handy in tests and logs)."""

    def __init__(self) -> None:
        self.received = 0
        self.emitted = 0
        self.requests = 0
        self.reconnects = 0
        self.parse_errors: dict[str, int] = {}


class _IntakeFailed(Exception):
    """The intake log could not fsync what this stream received."""


class _Flow:
    """State shared by the stream reader and the request writer of one ``sub`` call."""

    def __init__(self) -> None:
        self.caught_up = asyncio.Event()  # set while the reader waits for the next message
        self.received = False  # something arrived since the last request


class FalcoGrpcSource:
    """:class:`detector.sources.base.Source` reading alerts from Falco's gRPC outputs API."""

    name = "falco_grpc"

    def __init__(
        self,
        config: FalcoGrpcConfig,
        *,
        metrics: FalcoGrpcMetrics | None = None,
        parse: Parse = parse_falco,
        backoff: Backoff | None = None,
        intake: LoggedIntake | None = None,
    ) -> None:
        """``intake``: alerts go through the intake log instead of ``emit`` (see the
        module docstring)."""
        if not config.enabled:
            raise ValueError("endpoint: falco_grpc source needs an endpoint")
        self.config = config
        self.stats = FalcoGrpcStats()
        self._metrics = metrics
        self._parse = parse
        self._backoff = backoff or Backoff(config.backoff_initial_s, config.backoff_max_s)
        self._connected = False
        self._last_failure: str | None = None
        self._intake = intake

    def ready(self) -> bool:
        """True while a stream to Falco is open."""
        return self._connected

    async def run(self, emit: Emit) -> None:
        """Consume until cancelled (``sub``) or until one drain completed (``get``)."""
        log.warning("falco_grpc.deprecated", detail=DEPRECATION)
        while True:
            try:
                await self._session(emit)
                if self.config.mode == "get":
                    return
                self._failed("stream_ended", "Falco closed the stream (shutdown or restart?)")
            # except*: the sub stream's reader runs inside a TaskGroup, which wraps errors.
            except* grpc.aio.AioRpcError as group:
                rpc_error = _first(group)
                self._failed(rpc_error.code().name.lower(), rpc_error.details() or "")
            except* _IntakeFailed as group:
                self._failed("intake_log", str(_first(group)))
            except* OSError as group:  # TLS files unreadable; path only, never content
                os_error = _first(group)
                self._failed("tls_files", f"{os_error.strerror}: {os_error.filename}")
            finally:
                self._connected = False
            _reraise_cancellation()
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self, emit: Emit) -> None:
        cfg = self.config
        channel = open_channel(cfg.endpoint, cfg.ca, cfg.cert, cfg.key, cfg.server_name)
        async with channel:
            version = await version_call(channel)(
                version_pb2.request(), timeout=cfg.connect_timeout_s
            )
            self._on_connected(version)
            if cfg.mode == "get":
                await self._drain(channel, emit)
            else:
                await self._subscribe(channel, emit)

    def _on_connected(self, version: version_pb2.response) -> None:
        self._connected = True
        self._backoff.reset()
        self._last_failure = None
        log.info(
            "falco_grpc.connected",
            endpoint=self.config.endpoint,
            mode=self.config.mode,
            falco_version=version.version,
            engine_version=version.engine_version,
        )

    def _failed(self, reason: str, detail: str) -> None:
        """Count every failure; log only when the state or the reason changes."""
        self.stats.reconnects += 1
        if self._metrics is not None:
            self._metrics.reconnect()
        if self._connected or self._last_failure != reason:
            event = "falco_grpc.disconnected" if self._connected else "falco_grpc.connect_failed"
            log.error(
                event,
                endpoint=self.config.endpoint,
                reason=reason,
                detail=detail[:300],
                hint=_hint(reason, detail, tls=not is_unix(self.config.endpoint)),
                retry_max_s=self.config.backoff_max_s,
            )
        self._last_failure = reason

    async def _drain(self, channel: grpc.aio.Channel, emit: Emit) -> None:
        # Reading pulls: the next message is only taken after emit returned.
        async for response in outputs_get(channel)(outputs_pb2.request()):
            await self._deliver(response, emit)
        await self._committed()
        log.info("falco_grpc.drained", endpoint=self.config.endpoint, total=self.stats.received)

    async def _subscribe(self, channel: grpc.aio.Channel, emit: Emit) -> None:
        call = outputs_sub(channel)()
        flow = _Flow()
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(self._request_loop(call, flow))
                await self._read_loop(call, flow, emit)
                writer.cancel()
        finally:
            call.cancel()

    async def _read_loop(self, call: Any, flow: _Flow, emit: Emit) -> None:
        while True:
            flow.caught_up.set()
            response = await call.read()
            flow.caught_up.clear()
            if response is grpc.aio.EOF:
                return
            flow.received = True
            await self._deliver(response, emit)

    async def _request_loop(self, call: Any, flow: _Flow) -> None:
        """Send an empty request whenever the reader is caught up, paced by keepalive."""
        fast, idle = self.config.keepalive_s, self.config.keepalive_idle_s
        interval = fast
        while True:
            await flow.caught_up.wait()  # flow control: ask only when emit took everything
            await self._committed()  # the request acknowledges: only once on disk
            flow.received = False
            try:
                await call.write(outputs_pb2.request())
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return  # the stream is over; the reader reports why
            self.stats.requests += 1
            await asyncio.sleep(interval)
            interval = fast if flow.received else min(interval * 2, idle)

    async def _deliver(self, response: outputs_pb2.response, emit: Emit) -> None:
        self.stats.received += 1
        try:
            event = self._parse(response_to_alert(response))
        except SkippedInput as exc:
            self._count_error(exc.reason)
            return
        except ParseError as exc:  # a bad alert is skipped, never ends the stream
            self._count_error(exc.reason)
            log.warning("falco_grpc.bad_alert", reason=exc.reason, error=str(exc))
            return
        if self._metrics is not None:
            self._metrics.event_in()
        if self._intake is None:
            await emit(event)
        else:
            while not self._intake.offer(self.name, (event,)):  # noqa: ASYNC110
                await asyncio.sleep(_ROOM_POLL_S)
        self.stats.emitted += 1

    async def _committed(self) -> None:
        if self._intake is None:
            return
        try:
            await self._intake.committed()
        except OSError as exc:  # not durable: no acknowledgement; reconnect and go on
            raise _IntakeFailed(exc.strerror or type(exc).__name__) from None

    def _count_error(self, reason: str) -> None:
        self.stats.parse_errors[reason] = self.stats.parse_errors.get(reason, 0) + 1
        if self._metrics is not None:
            self._metrics.parse_error(reason)


def _reraise_cancellation() -> None:
    """Honour a pending cancel that grpc.aio turned into a CANCELLED status error.

    Cancelling a task inside an RPC await can surface as ``AioRpcError(CANCELLED)``
    rather than ``CancelledError``; the retry loop would then swallow the shutdown.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _first(group: BaseExceptionGroup[Any]) -> Any:
    """The first leaf exception of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _hint(reason: str, detail: str, *, tls: bool) -> str:
    """One line telling an operator where to look; empty when there is nothing to add."""
    text = detail.lower()
    if any(word in text for word in ("ssl", "handshake", "certificate", "tls")):
        return "TLS handshake failed: check ca/cert/key and that Falco's root_certs signed cert"
    if tls and reason == "unavailable" and "socket closed" in text:
        # With TLS 1.3 a server that refuses our certificate just closes the connection.
        return "Falco closed the TLS connection: is cert signed by the CA in Falco's root_certs?"
    if reason == "tls_files":
        return "cannot read a TLS file named in ca/cert/key"
    if reason == "deadline_exceeded":
        return "no answer before connect_timeout_s: is this Falco's gRPC server (<= 0.43)?"
    if reason == "unavailable" and "permission denied" in text:
        return "no permission on the unix socket (root-owned, mode 0755): run as uid 0"
    if reason == "unimplemented":
        return "server has no falco.outputs/falco.version service: Falco >= 0.44 removed gRPC"
    return ""
