"""Body bytes in flight are bounded by ``http.max_inflight_bytes``, charged as they arrive;
bodies that stall or trickle are ended by the body timeouts.

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


async def start(
    h: Harness, body: bytes, sent: int = 1024
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send the headers and the first ``sent`` bytes of a POST /k8s-audit; the rest waits."""
    reader, writer = await announce(h, len(body))
    writer.write(body[:sent])
    await writer.drain()
    return reader, writer


async def announce(h: Harness, length: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw socket that has sent only the headers of a POST of ``length`` bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", h.server.port)
    head = (
        f"POST /k8s-audit HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode())
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
        # two bodies all but their last byte received: charged for what arrived
        first, second = await start(h, body, len(body) - 1), await start(h, body, len(body) - 1)
        await until(lambda: h.budget_used() == 2 * (len(body) - 1))
        third = await finish(await start(h, body), body[1024:])
        assert third[0] == 503, third[1][:300]
        assert b"Retry-After: 1" in third[1] and b"over_budget" in third[1]
        refused = {"endpoint": "/k8s-audit", "reason": "over_budget"}
        assert h.metrics.value("detector_http_refused_total", refused) == 1
        assert [(await finish(s, body[-1:]))[0] for s in (first, second)] == [200, 200]
        await until(lambda: h.metrics.value("detector_http_inflight_bytes") == 0)
        async with aiohttp.ClientSession() as session:  # budget given back: accepted again
            headers = {"Content-Type": "application/json"}
            async with session.post(h.url + "/k8s-audit", data=body, headers=headers) as resp:
                assert resp.status == 200
        assert h.budget_used() == 0


async def test_announced_but_unsent_bodies_hold_nothing_and_time_out() -> None:
    """Four clients announce 16 MiB and send nothing: good POSTs still pass at once, and
    the idle ones get 408 once their body stalls past body_chunk_timeout_s."""
    config = HttpConfig(max_inflight_bytes=16 << 20, body_chunk_timeout_s=0.5)
    async with receivers(config, max_events=5000, cap=16 << 20) as h:
        idle = [await announce(h, 16 << 20) for _ in range(4)]
        await until(lambda: h.server.guard.open == 4)
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": "application/json"}
            for _ in range(3):
                async with session.post(
                    h.url + "/k8s-audit", data=big_batch(), headers=headers
                ) as r:
                    assert r.status == 200
        assert h.budget_used() == 0
        answers = [await asyncio.wait_for(reader.read(), 5) for reader, _ in idle]
        assert all(b" 408 " in a and b"body_timeout" in a for a in answers), answers
        for _, writer in idle:
            writer.close()
        await until(lambda: h.server.guard.open == 0)


async def test_body_total_deadline_closes_a_slow_drip() -> None:
    """A body that trickles in never stalls a read for long, but the total deadline
    (body_timeout_s) still ends it; the per-read timeout here is far longer."""
    config = HttpConfig(body_timeout_s=0.6, body_chunk_timeout_s=30)
    async with receivers(config) as h:
        reader, writer = await announce(h, 4096)
        for _ in range(10):  # 0.5 s of drips, then silence (writing on would race the close)
            writer.write(b" ")
            await asyncio.sleep(0.05)
        answer = await asyncio.wait_for(reader.read(), 5)  # well before the 30 s read timeout
        assert b" 408 " in answer and b"body_timeout" in answer
        writer.close()


def test_budget_below_a_receivers_cap_is_refused_at_start() -> None:
    import pytest

    from detector import config as cfg

    with pytest.raises(cfg.ConfigError, match="max_inflight_bytes"):
        cfg.load(environ={"DETECTOR_HTTP__MAX_INFLIGHT_BYTES": str(1 << 20)})  # audit: 16 MiB
    small = {"DETECTOR_HTTP__MAX_INFLIGHT_BYTES": str(1 << 20)}
    small |= {"DETECTOR_SOURCES__K8S_AUDIT__ENABLED": "false"}
    small |= {"DETECTOR_SOURCES__EVENTS__ENABLED": "false"}
    assert cfg.load(environ=small).http.max_inflight_bytes == 1 << 20
