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
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from detector.config import HttpConfig
from detector.metrics import Metrics

READ_CHUNK: Final = 64 * 1024


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
    while chunk := await _read(request, min(config.body_chunk_timeout_s, deadline - loop.time())):
        size += len(chunk)
        if size > cap:
            raise RequestRejected(413, "body_too_large", f"limit is {cap} bytes")
        held.grow(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


async def _read(request: web.Request, timeout_s: float) -> bytes:
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            return await request.content.read(READ_CHUNK)
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
