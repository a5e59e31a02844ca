"""RFC 3339 text from integer nanoseconds since the epoch, UTC, with a ``Z``.

Generators write millions of timestamps that share few distinct seconds, so the
``YYYY-MM-DDTHH:MM:SS`` part is cached per second (bounded: cleared when full).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

SECOND: Final = 1_000_000_000
_CACHE_MAX: Final = 65_536
_seconds: dict[int, str] = {}


def _second(seconds: int) -> str:
    text = _seconds.get(seconds)
    if text is None:
        if len(_seconds) >= _CACHE_MAX:
            _seconds.clear()
        text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _seconds[seconds] = text
    return text


def nanos(time_ns: int) -> str:
    """``2026-03-02T10:00:00.123456789Z``: Falco's ``time`` (9 fractional digits)."""
    seconds, fraction = divmod(time_ns, SECOND)
    return f"{_second(seconds)}.{fraction:09d}Z"


def micros(time_ns: int) -> str:
    """``2026-03-02T10:00:00.123456Z``: the API server's metav1.MicroTime."""
    seconds, fraction = divmod(time_ns, SECOND)
    return f"{_second(seconds)}.{fraction // 1000:06d}Z"


def clock(time_ns: int) -> str:
    """``10:00:00.123456789``: the time of day Falco's ``output`` text starts with."""
    return nanos(time_ns)[11:-1]


def from_datetime(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact: integer arithmetic)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds * 1000
