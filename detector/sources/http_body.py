"""Reading one request body under a size cap, two deadlines and the shared byte budget.

::

    Content-Length over the cap   -> 413, never read
    each read                     -> 408 body_timeout if it stalls body_chunk_timeout_s,
                                     or when the whole body took body_timeout_s
    bytes received                -> charged to the in-flight budget as they arrive
                                     (503 over_budget), never as announced: a client that
                                     announces 16 MiB and sends nothing holds nothing
    size over the cap             -> 413 (chunked or gzip-inflated bodies, as they grow)
    undecodable Content-Encoding  -> 400 bad_content_encoding
    client gone mid-body          -> :class:`ClientGone` (counted once, no traceback)

The budget (``http.max_inflight_bytes``) bounds the body bytes of every request being
read or decoded at once; decoded events cost a multiple of their bytes, so it bounds that
too. Each request's share is given back when it is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from detector.config import HttpConfig
from detector.metrics import Metrics


class RequestRejected(Exception):
    """An HTTP error answer: ``status``, a snake_case ``reason`` and a human ``detail``."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        super().__init__(f"{status} {reason}: {detail}")
        self.status, self.reason, self.detail = status, reason, detail


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""


class InflightBudget:
    """Body bytes held by the requests in progress; refuses beyond ``limit``."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit, self.used, self._metrics = limit, 0, metrics

    def take(self, size: int) -> None:
        """Hold ``size`` bytes more, or raise 503 ``over_budget``."""
        if self.used + size > self.limit:
            raise RequestRejected(503, "over_budget", "too many request bytes in flight")
        self.used += size
        self._metrics.http_inflight_bytes.set(self.used)

    def give(self, size: int) -> None:
        self.used -= size
        self._metrics.http_inflight_bytes.set(self.used)


class Held:
    """One request's share of the budget (given back in ``finally``)."""

    def __init__(self, budget: InflightBudget) -> None:
        self.budget, self.size = budget, 0

    def grow(self, size: int) -> None:
        self.budget.take(size)
        self.size += size

    def release(self) -> None:
        self.budget.give(self.size)
        self.size = 0


async def read_body(request: web.Request, cap: int, held: Held, config: HttpConfig) -> bytes:
    """The whole body, or the refusal the module docstring lists."""
    if request.content_length is not None and request.content_length > cap:
        raise RequestRejected(413, "body_too_large", f"limit is {cap} bytes")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.body_timeout_s
    chunks: list[bytes] = []
    size = 0
    async with _reading(request) as timer:
        while True:
            # one timer for the whole body, moved before each read (not one per read)
            timer.reschedule(min(loop.time() + config.body_chunk_timeout_s, deadline))
            # all that has arrived, as the parser handed it over (no 64 KiB slices)
            chunk = await request.content.readany()
            if not chunk:
                return b"".join(chunks)  # of one chunk: that chunk, not a copy
            size += len(chunk)
            if size > cap:
                raise RequestRejected(413, "body_too_large", f"limit is {cap} bytes")
            held.grow(len(chunk))
            chunks.append(chunk)


@asynccontextmanager
async def _reading(request: web.Request) -> AsyncIterator[asyncio.Timeout]:
    """The body's timer; what reading it may raise, as our answers."""
    try:
        async with asyncio.timeout(None) as timer:
            yield timer
    except TimeoutError:
        raise RequestRejected(408, "body_timeout", "request body too slow") from None
    except ConnectionError:
        raise ClientGone() from None
    except (RequestPayloadError, HttpProcessingError) as exc:
        raise _payload_error(request, exc) from None


def _payload_error(request: web.Request, exc: Exception) -> Exception:
    """aiohttp's payload failure (it wraps the parser's error) as our answer."""
    cause = exc.__cause__ if isinstance(exc, RequestPayloadError) else exc
    if isinstance(cause, ContentEncodingError):
        return RequestRejected(
            400, "bad_content_encoding", "body does not match its Content-Encoding"
        )
    if request.transport is None or request.transport.is_closing():
        return ClientGone()
    message = cause.message if isinstance(cause, HttpProcessingError) else str(cause)
    return RequestRejected(400, "bad_body", message[:200])
