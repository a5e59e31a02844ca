"""Where a relay sends its batches: the :class:`Forwarder` protocol and the HTTP one.

A forwarder sends one batch and returns only once the other side acknowledged it, or
raises from the :mod:`detector.sinks.base` delivery tree; :class:`~.worker.Relay` owns
retries. The HTTP forwarder classifies the correlator's answer:

* 2xx — delivered;
* 413, or an encoded batch above ``max_batch_bytes`` — :class:`BatchTooLarge` (split it);
* 408, 425, 429, 5xx, connection errors, timeouts — transient, with ``Retry-After``;
* any other 4xx — permanent: the correlator will never take this batch (bad token,
  unknown schema). Its JSON reason is kept in the message; request headers never are.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Final, Protocol

import aiohttp

from correlation.event import Event
from detector.relay import wire
from detector.relay.config import RelayConfig, RelayHttpConfig
from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError
from detector.sinks.http import parse_retry_after

_RETRYABLE: Final = frozenset({408, 425, 429})
_EXCERPT: Final = 300


class BatchTooLarge(PermanentDeliveryError):
    """This batch cannot go as one; smaller batches can (the relay halves it)."""


class Forwarder(Protocol):
    """One transport to the correlator."""

    name: str

    async def send(self, events: Sequence[Event]) -> None:
        """Deliver ``events`` as one batch; raise a delivery error when that failed."""
        ...

    async def mark(self, time_ns: int) -> None:
        """Tell every consumer this relay has delivered its events up to ``time_ns``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def client_ssl_context(config: RelayHttpConfig) -> ssl.SSLContext | None:
    """Server verification (custom CA) and the client certificate for mTLS, or None."""
    if not (config.ca_file or config.cert_file):
        return None
    context = ssl.create_default_context(cafile=config.ca_file or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    return context


class HttpForwarder:
    """POSTs ``events/v1`` batches to the correlator's ``/events``."""

    name = "http"

    def __init__(self, config: RelayConfig) -> None:
        self._config = config.http
        self._max_bytes = config.max_batch_bytes
        self._headers = {"Content-Type": "application/json"}
        if self._config.bearer_token:
            self._headers["Authorization"] = f"Bearer {self._config.bearer_token}"
        self._ssl = client_ssl_context(self._config)  # loads the files now: fail at start
        self._session: aiohttp.ClientSession | None = None

    async def send(self, events: Sequence[Event]) -> None:
        body = wire.encode(events)
        if len(body) > self._max_bytes:
            raise BatchTooLarge(f"{len(body)} bytes > max_batch_bytes {self._max_bytes}")
        try:
            async with self._client().post(
                self._config.endpoint, data=body, headers=self._headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return
                text = (await response.text(errors="replace"))[:_EXCERPT].strip()
                _raise_for(response.status, text, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"request failed: {type(exc).__name__}") from None

    async def mark(self, time_ns: int) -> None:
        """Nothing: one correlator behind HTTP sees the events themselves, in order."""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl or True, limit=2)
            timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _raise_for(status: int, text: str, retry_after: str | None) -> None:
    message = f"HTTP {status}: {text}"
    if status == 413:
        raise BatchTooLarge(message)
    if status in _RETRYABLE or status >= 500:
        raise TransientDeliveryError(message, retry_after=parse_retry_after(retry_after))
    raise PermanentDeliveryError(message)
