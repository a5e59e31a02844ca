"""Concurrent large bodies are bounded by ``http.max_inflight_bytes``, not only per request.

Real server on loopback; the senders are raw sockets so that a request can be held
half-sent (headers and part of the body) while the next one arrives.
"""

from __future__ import annotations

import asyncio

import aiohttp

from detector.config import HttpConfig
from tests.integration.http.harness import Harness, audit_event, event_list, receivers

CAP = 512 * 1024


def big_batch() -> bytes:
    """A valid audit EventList of about 300 KiB."""
    return event_list(*(audit_event(n) for n in range(600)))


async def start(h: Harness, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send the headers and the first KiB of a POST /k8s-audit; the rest waits."""
    reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
    head = (
        f"POST /k8s-audit HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body[:1024])
    await writer.drain()
    return reader, writer


async def finish(
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], rest: bytes
) -> tuple[int, bytes]:
    reader, writer = stream
    writer.write(rest)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(answer.split(b" ", 2)[1]), answer


async def until(check: object) -> None:
    async with asyncio.timeout(5):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_third_large_body_in_flight_gets_503_with_retry_after() -> None:
    body = big_batch()
    assert 200 * 1024 < len(body) < CAP  # each within its own cap: only the budget refuses
    config = HttpConfig(max_inflight_bytes=2 * len(body) + 1000)
    async with receivers(config, max_events=5000, cap=CAP) as h:
        first, second = await start(h, body), await start(h, body)
        await until(lambda: h.metrics.value("detector_http_inflight_bytes") == 2 * len(body))
        third = await finish(await start(h, body), body[1024:])
        assert third[0] == 503, third[1][:300]
        assert b"Retry-After: 1" in third[1] and b"over_budget" in third[1]
        refused = {"endpoint": "/k8s-audit", "reason": "over_budget"}
        assert h.metrics.value("detector_http_refused_total", refused) == 1
        assert [(await finish(s, body[1024:]))[0] for s in (first, second)] == [200, 200]
        await until(lambda: h.metrics.value("detector_http_inflight_bytes") == 0)
        async with aiohttp.ClientSession() as session:  # budget given back: accepted again
            headers = {"Content-Type": "application/json"}
            async with session.post(h.url + "/k8s-audit", data=body, headers=headers) as resp:
                assert resp.status == 200
        assert h.budget_used() == 0


async def test_chunked_bodies_are_charged_as_they_grow() -> None:
    body = big_batch()
    config = HttpConfig(max_inflight_bytes=len(body) + len(body) // 2)
    async with receivers(config, max_events=5000, cap=CAP) as h:
        held = await start(h, body)  # Content-Length reserves the whole body
        await until(lambda: h.metrics.value("detector_http_inflight_bytes") == len(body))

        async def chunks() -> object:
            for at in range(0, len(body), 64 * 1024):
                yield body[at : at + 64 * 1024]

        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(h.url + "/k8s-audit", data=chunks(), headers=headers) as resp:
                assert resp.status == 503
                assert (await resp.json())["error"] == "over_budget"
        assert (await finish(held, body[1024:]))[0] == 200
        await until(lambda: h.budget_used() == 0)


def test_budget_below_a_receivers_cap_is_refused_at_start() -> None:
    import pytest

    from detector import config as cfg

    with pytest.raises(cfg.ConfigError, match="max_inflight_bytes"):
        cfg.load(environ={"DETECTOR_HTTP__MAX_INFLIGHT_BYTES": str(1 << 20)})  # audit: 16 MiB
    small = {"DETECTOR_HTTP__MAX_INFLIGHT_BYTES": str(1 << 20)}
    small |= {"DETECTOR_SOURCES__K8S_AUDIT__ENABLED": "false"}
    small |= {"DETECTOR_SOURCES__EVENTS__ENABLED": "false"}
    assert cfg.load(environ=small).http.max_inflight_bytes == 1 << 20
