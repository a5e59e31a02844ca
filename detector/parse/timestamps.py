"""RFC 3339 timestamps to integer nanoseconds since the epoch, fast and strict.

Falco writes ``2023-05-25T13:44:05.478445995Z`` (9 fractional digits), the API server
``2018-10-26T13:38:34.867116Z`` (µs) and v1beta1 events ``2018-10-26T13:38:34Z``; other
producers write offsets (``…+00:00``, ``…+02:00``) or lower case (``t``, ``z``). Every
accepted text is ``date T time [fraction] offset`` with fixed positions, so
:func:`rfc3339_ns` answers the common shapes by slicing:

* the first 19 characters (date, separator, time) index a cache of their epoch ns;
* the last character ``Z``/``z``, or the last six ``±HH:MM``, a cache of offsets;
* the fraction (1–9 ASCII digits) is an integer scaled to ns.

Only :func:`_general` puts entries in the caches, after checking them, so a cache hit
means that part is valid, and a text the fast path does not fully recognise goes to
:func:`_general`: the fast path never raises and never answers differently (a
hypothesis test compares the two, and both with an independent reference). Events
arrive roughly in time order, so a replay of millions of events touches a few thousand
distinct seconds.

Refused (``ParseError("bad_time")``): anything outside the grammar (RFC 3339 §5.6, with
``T``/``Z`` in either case), more than 9 fractional digits (below a nanosecond), no
offset, impossible dates and times (``02-30``, ``24:00``), offsets beyond ``±23:59``,
year 0000 (before :class:`datetime`'s range) and leap seconds (``:60``: neither Falco's
POSIX ``evt.time`` nor the API server's Go times can hold one).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from detector.errors import ParseError

NS: Final = 1_000_000_000
_SECOND_CACHE_MAX: Final = 8192
_second_cache: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" → ns since the epoch
_offset_cache: dict[str, int] = {"Z": 0, "z": 0}  # "±HH:MM" → ns east of UTC
# ns per unit of a fraction with n digits: _SCALE[3] = 1_000_000 (milliseconds).
_SCALE: Final[tuple[int, ...]] = tuple(10 ** (9 - n) for n in range(10))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)
_GRAMMAR: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?",
    re.ASCII,
)
_MAX_CHARS: Final = 40  # 19 + "." + 9 digits + "+HH:MM", with room for a clear error


def rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time; :class:`ParseError` ``bad_time``."""
    base = _second_cache.get(text[:19])
    if base is not None:
        last = text[-1]
        if last == "Z" or last == "z":
            if len(text) == 20:
                return base
            fraction = text[20:-1]
        else:
            shift = _offset_cache.get(text[-6:])
            if shift is None or len(text) < 25:
                return _general(text)
            base -= shift
            if len(text) == 25:
                return base
            fraction = text[20:-6]
        digits = len(fraction)
        # isdigit() alone would accept "²" and int() would accept "+1" or "1_0".
        if 0 < digits <= 9 and text[19] == "." and fraction.isascii() and fraction.isdigit():
            return base + int(fraction) * _SCALE[digits]
    return _general(text)


def _general(text: str) -> int:
    """Every accepted shape, checked in full; fills the caches the fast path reads."""
    match = _GRAMMAR.fullmatch(text) if len(text) <= _MAX_CHARS else None
    if match is None:
        raise _bad("not an RFC 3339 time", text)
    fraction, offset = match.group(7) or "", match.group(8)
    if len(fraction) > 9:
        raise _bad("more than 9 fractional digits", text)
    if offset is None:
        raise _bad("time has no UTC offset", text)
    base = _epoch_ns(text[:19], match) - _offset_ns(offset, text)
    return base + (int(fraction) * _SCALE[len(fraction)] if fraction else 0)


def _epoch_ns(prefix: str, match: re.Match[str]) -> int:
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise _bad("not a valid date and time", match.string) from None
    base = (moment - _EPOCH) // _SECOND * NS
    if len(_second_cache) >= _SECOND_CACHE_MAX:
        _second_cache.clear()  # bounded: a fresh cache refills within a few events
    _second_cache[prefix] = base
    return base


def _offset_ns(offset: str, text: str) -> int:
    shift = _offset_cache.get(offset)
    if shift is None:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise _bad("UTC offset out of range", text)
        shift = (hours * 3600 + minutes * 60) * (-NS if offset[0] == "-" else NS)
        _offset_cache[offset] = shift  # at most 2 × 24 × 60 valid offsets exist
    return shift


def _bad(what: str, text: str) -> ParseError:
    return ParseError("bad_time", f"{what} ({text[:_MAX_CHARS]!r})")
