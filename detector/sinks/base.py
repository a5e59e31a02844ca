"""The one interface every sink implements.

A sink delivers one chain record (``correlation.chain.to_record`` output, schema
``lateral-movement-chain/v1``). It raises :class:`TransientDeliveryError` when a retry
may succeed (network error, 5xx, 429, broker down) and :class:`PermanentDeliveryError`
when it never will (4xx other than 429). The durable outbox owns retries.

Exceptions::

    DeliveryError
     ├── TransientDeliveryError   retry later (optionally after ``retry_after`` seconds)
     └── PermanentDeliveryError   dead-letter it, never retry
"""

from __future__ import annotations

from typing import Any, Protocol


class DeliveryError(Exception):
    """A sink could not deliver a record."""


class TransientDeliveryError(DeliveryError):
    """Delivery failed for now; ``retry_after`` (seconds) is the destination's hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Delivery can never succeed for this record (e.g. HTTP 400)."""


class Sink(Protocol):
    """A destination for chain records."""

    name: str

    async def deliver(self, record: dict[str, Any]) -> None:
        """Deliver one record; return only once the destination acknowledged it."""
        ...

    async def close(self) -> None:
        """Flush and release connections."""
        ...
