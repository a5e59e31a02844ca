"""RFC 3339 timestamps to integer nanoseconds since the epoch, fast.

Falco writes ``2023-05-25T13:44:05.478445995Z`` (9 fractional digits), the API server
``2018-10-26T13:38:34.867116Z`` (µs) and v1beta1 events ``2018-10-26T13:38:34Z``. All share
one fixed layout, so the fast path slices the string instead of calling ``strptime``:
the first 19 characters (date and second) index a small cache of epoch seconds, and the
fraction is an integer scaled to ns. Events arrive in time order, so a replay of millions
of events touches only a few thousand distinct seconds. Anything else (offsets other
than ``Z``, odd spacing) takes the slow, strict path through ``datetime.fromisoformat``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from detector.errors import ParseError

_SECOND_CACHE_MAX: Final = 8192
_second_cache: dict[str, int] = {}
# ns per unit of a fraction with n digits: _SCALE[3] = 1_000_000 (milliseconds).
_SCALE: Final[tuple[int, ...]] = tuple(int("1" + "0" * (9 - n)) for n in range(10))


def rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time; :class:`ParseError` ``bad_time``."""
    if len(text) >= 20 and text[-1] == "Z" and text[19] in ".Z":
        seconds = _second_cache.get(text[:19])
        if seconds is None:
            seconds = _epoch_seconds(text[:19], text)
        if len(text) == 20:
            return seconds * 1_000_000_000
        fraction = text[20:-1]
        # isdigit() alone would accept "²" and int() would accept "+1" or "1_0".
        if 0 < len(fraction) <= 9 and fraction.isascii() and fraction.isdigit():
            return seconds * 1_000_000_000 + int(fraction) * _SCALE[len(fraction)]
    return _slow_path(text)


def _epoch_seconds(prefix: str, text: str) -> int:
    if prefix[10] != "T" or not prefix[:4].isdigit():
        raise ParseError("bad_time", f"not an RFC 3339 time ({_excerpt(text)})")
    try:
        moment = datetime.fromisoformat(prefix + "+00:00")
    except ValueError:
        raise ParseError("bad_time", f"not an RFC 3339 time ({_excerpt(text)})") from None
    seconds = int(moment.timestamp())
    if len(_second_cache) >= _SECOND_CACHE_MAX:
        _second_cache.clear()  # bounded: a fresh cache refills within a few events
    _second_cache[prefix] = seconds
    return seconds


def _slow_path(text: str) -> int:
    """Offsets other than Z, or a fraction the fast path refused; still strict RFC 3339."""
    if not 20 <= len(text) <= 40 or text[10] not in "Tt" or not text.isascii():
        raise ParseError("bad_time", f"not an RFC 3339 time ({_excerpt(text)})")
    head, fraction, offset = text[:19], "", text[19:]
    if offset.startswith("."):
        digits = len(offset) - len(offset[1:].lstrip("0123456789"))
        fraction, offset = offset[1:digits], offset[digits:]
    if offset in ("Z", "z"):
        offset = "+00:00"
    if not fraction.isdigit() and fraction or len(fraction) > 9:
        raise ParseError("bad_time", f"bad fractional seconds ({_excerpt(text)})")
    try:
        moment = datetime.fromisoformat(head + offset)
    except ValueError:
        raise ParseError("bad_time", f"not an RFC 3339 time ({_excerpt(text)})") from None
    if moment.tzinfo is None:
        raise ParseError("bad_time", f"time has no UTC offset ({_excerpt(text)})")
    nanos = int(fraction) * _SCALE[len(fraction)] if fraction else 0
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def _excerpt(text: str) -> str:
    return repr(text[:40])
