"""RFC 3339 → ns: the fast path agrees with datetime, the slow path is strict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.errors import ParseError
from detector.parse.timestamps import rfc3339_ns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-25T13:44:05.478445995Z", 1685022245478445995),
        ("2018-10-26T13:38:34.867116Z", 1540561114867116000),
        ("2018-10-26T13:38:34Z", 1540561114000000000),
        ("2018-10-26T15:38:34.5+02:00", 1540561114500000000),
        ("2018-10-26t13:38:34z", 1540561114000000000),
    ],
)
def test_known_values(text: str, expected: int) -> None:
    assert rfc3339_ns(text) == expected


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


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2018-10-26",
        "2018-10-26T13:38:34",
        "2018-10-26T13:38:34.+1Z",
        "2018-10-26T13:38:34.1_0Z",
        "2018-10-26T13:38:34.²Z",
        "2018-02-30T00:00:00Z",
        "x" * 30,
        "2018-10-26T13:38:34.1234567890Z",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ParseError) as info:
        rfc3339_ns(text)
    assert info.value.reason == "bad_time"
