"""HMAC-SHA256 signatures of webhook bodies, the sender and the receiver side.

Header format (one header, default name ``X-Chain-Signature``)::

    t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is inside the signed bytes, so a receiver that rejects old timestamps
(:data:`DEFAULT_TOLERANCE_S`) also rejects replays of a captured request. :func:`verify`
is what a receiver runs; docs/sinks.md shows the same check in a few lines of Python.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

HEADER: Final = "X-Chain-Signature"
DEFAULT_TOLERANCE_S: Final = 300


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` sent at ``timestamp`` (default: now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: int | None = None,
) -> bool:
    """True when ``header`` is a valid, fresh signature of ``body``."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    expected = sign(secret, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
