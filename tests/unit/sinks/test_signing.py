"""Webhook signatures and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime

from detector.delivery.loops import backoff_s
from detector.sinks.config import RetryConfig
from detector.sinks.http import parse_retry_after
from detector.sinks.signing import sign, verify


def test_signature_round_trip_and_tampering() -> None:
    header = sign(b"k", b'{"id":1}', timestamp=1000)
    assert verify(b"k", b'{"id":1}', header, now=1010)
    assert not verify(b"k", b'{"id":2}', header, now=1010)  # body changed
    assert not verify(b"other", b'{"id":1}', header, now=1010)  # wrong key
    assert not verify(b"k", b'{"id":1}', header, now=1000 + 301)  # too old: replay
    assert not verify(b"k", b'{"id":1}', "garbage", now=1010)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    retry = RetryConfig(initial_s=1, max_s=10, multiplier=2, jitter=0)
    assert [backoff_s(n, retry, None) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    assert backoff_s(1, retry, 5.0) == 5.0
    jittered = RetryConfig(initial_s=1, max_s=10, jitter=0.5)
    assert all(0.5 <= backoff_s(1, jittered, None) <= 1.5 for _ in range(50))
