"""RFC 3339 → ns: the fast path answers exactly as the general parser, which is strict.

Three implementations are compared: :func:`rfc3339_ns` (fast path over caches),
``_general`` (the grammar, which fills the caches) and :func:`_reference` below, written
independently (calendar.timegm and calendar.monthrange instead of datetime arithmetic).
The fast path only answers when the caches hold the text's parts, so every comparison
warms them first with the same date and time.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detector.errors import ParseError
from detector.parse import timestamps
from detector.parse.timestamps import rfc3339_ns

Outcome = tuple[str, int | str]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-25T13:44:05.478445995Z", 1685022245478445995),
        ("2018-10-26T13:38:34.867116Z", 1540561114867116000),
        ("2018-10-26T13:38:34Z", 1540561114000000000),
        ("2018-10-26T15:38:34.5+02:00", 1540561114500000000),
        ("2018-10-26T08:08:34-05:30", 1540561114000000000),
        ("2018-10-26T13:38:34-00:00", 1540561114000000000),
        ("2018-10-26t13:38:34z", 1540561114000000000),
        ("2024-02-29T00:00:00Z", 1709164800000000000),  # a leap day
        ("1969-12-31T23:59:59.5Z", -500000000),  # before the epoch: seconds floor
    ],
)
def test_known_values(text: str, expected: int) -> None:
    assert rfc3339_ns(text) == expected  # cold caches: the general path
    assert rfc3339_ns(text) == expected  # warm caches: the fast path


@given(
    # hypothesis wants naive bounds; the value gets its UTC tzinfo below
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),  # noqa: DTZ001
    st.integers(min_value=0, max_value=999_999_999),
)
def test_fast_path_matches_datetime(moment: datetime, nanos: int) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
    expected = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1)) * 10**9
    assert rfc3339_ns(text) == expected + nanos


BAD = [
    "",
    "2018-10-26",
    "2018-10-26T13:38:34",  # no offset
    "2018-10-26T13:38:34.",
    "2018-10-26T13:38:34.Z",  # a fraction needs a digit
    "2018-10-26T13:38:34.+1Z",
    "2018-10-26T13:38:34.1_0Z",
    "2018-10-26T13:38:34.²Z",
    "2018-10-26T13:38:34.1234567890Z",  # below a nanosecond
    "2018-02-30T00:00:00Z",
    "2019-02-29T00:00:00Z",  # not a leap year
    "1900-02-29T00:00:00Z",  # nor is 1900
    "2016-12-31T23:59:60Z",  # a leap second
    "2018-10-26T24:00:00Z",
    "2018-10-26T13:38:34+24:00",
    "2018-10-26T13:38:34+05:60",
    "2018-10-26T13:38:34+0530",
    "2018-10-26T13:38:34+05:30:00",
    "2018-10-26 13:38:34Z",
    "2026-W10-1T10:00:00Z",  # an ISO week date, not RFC 3339
    "0000-01-01T00:00:00Z",
    "2018-10-26T13:38:34ZZ",
    "x" * 30,
]


@pytest.mark.parametrize("text", BAD)
def test_rejects(text: str) -> None:
    for _ in range(2):  # cold, then with the caches as warm as a valid neighbour leaves them
        _warm(text)
        with pytest.raises(ParseError) as info:
            rfc3339_ns(text)
        assert info.value.reason == "bad_time"
        assert repr(text[:40]) in str(info.value)


# --- the property: fast == general == reference ----------------------------------------
_REFERENCE = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _reference(text: str) -> int | None:
    """RFC 3339 §5.6 by hand; ``None`` for anything refused."""
    match = _REFERENCE.match(text)
    if match is None or text.endswith("\n"):
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= year and 1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    offset = 0
    if match.group(8) not in ("Z", "z"):
        sign, hh, mm = match.group(8)[0], int(match.group(8)[1:3]), int(match.group(8)[4:6])
        if hh > 23 or mm > 59:
            return None
        offset = (hh * 3600 + mm * 60) * (1 if sign == "+" else -1)
    fraction = (match.group(7) or ".")[1:]
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return (calendar.timegm((year, month, day, hour, minute, second)) - offset) * 10**9 + nanos


def _outcome(parse: object, text: str) -> Outcome:
    try:
        return ("ok", parse(text))  # type: ignore[operator]
    except ParseError as exc:
        assert exc.reason == "bad_time"
        return ("error", str(exc))


def _warm(text: str) -> None:
    """Fill the caches with this text's date-time and offset, as a valid event would."""
    for candidate in (text[:19] + "Z", "2020-01-01T00:00:00" + text[-6:]):
        try:
            timestamps._general(candidate)
        except ParseError:
            pass


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Each part of a time, as (valid values, values to corrupt it with).
_PARTS: list[tuple[st.SearchStrategy[str], st.SearchStrategy[str]]] = [
    (st.integers(1, 9999).map(lambda n: f"{n:04d}"), st.sampled_from(["0000", "99", "20261"])),
    (_two(1, 12), st.sampled_from(["00", "13", "1", "W1"])),
    (_two(1, 28), st.sampled_from(["29", "30", "31", "32", "00"])),  # 29-31: valid in some months
    (st.sampled_from("Tt"), st.sampled_from([" ", "x", "", "TT"])),
    (_two(0, 23), st.sampled_from(["24", "99", "1"])),
    (_two(0, 59), st.sampled_from(["60", "7"])),
    (_two(0, 59), st.sampled_from(["60", "61", "5"])),
    (
        st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9).map(".{}".format)),
        st.sampled_from([".", ".1234567890", ".²", ".1_0", ".+1", ".٣", ",5", ". 1"]),
    ),
    (
        st.one_of(
            st.sampled_from(["Z", "z"]),
            st.tuples(st.sampled_from("+-"), _two(0, 23), _two(0, 59)).map(
                "{0[0]}{0[1]}:{0[2]}".format
            ),
        ),
        st.sampled_from(
            ["", "ZZ", "+0530", "+05:30:00", "Z\n", "+24:00", "-05:60", "+5:30", "UTC"]
        ),
    ),
]


@st.composite
def _texts(draw: st.DrawFn) -> str:
    """Mostly RFC 3339 times of every shape; a third with one part broken; some noise."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.text(max_size=45))
    broken = draw(st.integers(0, 3 * len(_PARTS) // 2))  # ≥ len(_PARTS): nothing broken
    parts = [draw(bad if i == broken else good) for i, (good, bad) in enumerate(_PARTS)]
    year, month, day, sep, hour, minute, second, fraction, offset = parts
    return f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{fraction}{offset}"


@settings(max_examples=3000)
@given(_texts())
@example("2016-02-29T23:59:59.999999999-23:59")
@example("9999-12-31T23:59:59.999999999Z")
@example("0001-01-01T00:00:00+23:59")
def test_fast_path_general_and_reference_agree(text: str) -> None:
    general = _outcome(timestamps._general, text)
    _warm(text)
    assert _outcome(rfc3339_ns, text) == general
    expected = _reference(text)
    assert general == (("ok", expected) if expected is not None else ("error", general[1]))
