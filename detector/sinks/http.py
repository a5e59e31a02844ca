"""One HTTP POST with the retry classification the outbox relies on.

Shared by the webhook and Slack sinks. A response maps onto the delivery error tree of
:mod:`detector.sinks.base`:

* 2xx — delivered;
* 408, 429, 5xx, connection errors, timeouts — :class:`TransientDeliveryError`, with the
  ``Retry-After`` header (seconds or an HTTP date) as ``retry_after``;
* any other status (4xx, unexpected 3xx) — :class:`PermanentDeliveryError` whose message
  carries the status and the start of the response body, which ends up in the dead-letter
  table. Request headers are never put in a message: they may hold credentials.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, NoReturn

import aiohttp

from detector.sinks.base import PermanentDeliveryError, TransientDeliveryError

BODY_EXCERPT: Final = 300  # characters of a failed response kept for the dead letter
_RETRYABLE: Final = frozenset({408, 425, 429})


def new_session(timeout_s: float, ca_file: str = "") -> aiohttp.ClientSession:
    """A client session with one overall deadline per request and an optional CA bundle."""
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    connector = aiohttp.TCPConnector(ssl=context if context else True, limit=4)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    )


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    method: str = "POST",
) -> bytes:
    """Send ``body``; return the response body on 2xx, raise a delivery error otherwise."""
    try:
        async with session.request(
            method, url, data=body, headers=headers, allow_redirects=False
        ) as response:
            if 200 <= response.status < 300:
                return await response.read()
            text = (await response.text(errors="replace"))[:BODY_EXCERPT]
            _raise_for(response.status, text, response.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The URL is left out: Slack's webhook URL is itself a credential.
        raise TransientDeliveryError(f"request failed: {type(exc).__name__}") from None


def _raise_for(status: int, text: str, retry_after: str | None) -> NoReturn:
    message = f"HTTP {status}: {text.strip()}"
    if status in _RETRYABLE or status >= 500:
        raise TransientDeliveryError(message, retry_after=parse_retry_after(retry_after))
    raise PermanentDeliveryError(message)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
