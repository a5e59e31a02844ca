"""Clients that hold connections, stall or vanish: the server closes them and keeps serving.

Real aiohttp server on loopback; the hostile clients are raw sockets. Peers are told apart
by their source address: Linux routes all of 127.0.0.0/8 to the loopback interface, so a
socket bound to 127.0.0.2 is a second peer.
"""

from __future__ import annotations

import asyncio
import gzip
import logging

import aiohttp
import orjson
import pytest
from structlog.testing import capture_logs

from detector.config import HttpConfig
from detector.sources.http_guard import check_fd_limit
from tests.integration.http.harness import Harness, falco_alert, receivers

JSON = {"Content-Type": "application/json"}


async def connect(
    h: Harness, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", h.server.port, local_addr=(source, 0))


async def until(check: object, within_s: float = 5) -> None:
    async with asyncio.timeout(within_s):
        while not check():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def healthz(h: Harness, source: str = "127.0.0.1") -> bytes:
    reader, writer = await connect(h, source)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def closed(h: Harness, reason: str) -> float:
    return h.metrics.value("detector_http_connections_closed_total", {"reason": reason})


async def test_one_peer_cannot_take_every_connection() -> None:
    async with receivers(HttpConfig(max_connections=20, max_connections_per_peer=5)) as h:
        idle = [await connect(h) for _ in range(8)]
        await until(lambda: closed(h, "peer_cap") == 3)
        refused = [await asyncio.wait_for(r.read(), 5) for r, _ in idle[5:]]
        assert all(b" 503 " in a and b"peer_cap" in a and b"Retry-After: 1" in a for a in refused)
        assert h.server.guard.open == 5
        assert b" 200 " in await healthz(h, "127.0.0.2")  # another peer is served at once
        for _, writer in idle:
            writer.close()
        await until(lambda: h.server.guard.open == 0)


async def test_total_connection_cap_refuses_instead_of_running_out_of_files() -> None:
    config = HttpConfig(max_connections=6, max_connections_per_peer=6)
    async with receivers(config) as h:
        idle = [await connect(h, f"127.0.0.{2 + n}") for n in range(6)]
        await until(lambda: h.server.guard.open == 6)
        answer = await healthz(h, "127.0.1.1")
        assert b" 503 " in answer and b"over_capacity" in answer
        assert closed(h, "over_capacity") == 1
        idle.pop()[1].close()
        await until(lambda: h.server.guard.open == 5)
        assert b" 200 " in await healthz(h, "127.0.1.1")
        for _, writer in idle:
            writer.close()


async def test_slow_headers_are_closed_at_the_header_deadline() -> None:
    async with receivers(HttpConfig(header_timeout_s=0.3, idle_timeout_s=30)) as h:
        reader, writer = await connect(h)
        writer.write(b"POST /falco HTTP/1.1\r\nHost: t\r\n")  # headers never finish
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
        assert closed(h, "header_timeout") == 1
        writer.close()


async def test_idle_connection_is_closed_at_the_idle_timeout() -> None:
    async with receivers(HttpConfig(idle_timeout_s=0.3)) as h:
        reader, writer = await connect(h)  # sends nothing at all
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await until(lambda: h.server.guard.open == 0)
        writer.close()


async def test_bad_gzip_is_a_400_json_answer_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with receivers() as h, aiohttp.ClientSession() as session:
        headers = {**JSON, "Content-Encoding": "gzip"}
        with capture_logs() as logs, caplog.at_level(logging.DEBUG):
            body = orjson.dumps(falco_alert())  # not gzip at all
            async with session.post(h.url + "/falco", data=body, headers=headers) as resp:
                answer = (resp.status, await resp.json())
            async with session.post(
                h.url + "/falco", data=gzip.compress(body), headers=headers
            ) as resp:
                assert resp.status == 200  # a real gzip body still works
    assert answer[0] == 400
    assert answer[1]["error"] == "bad_content_encoding"
    assert not [r for r in caplog.records if r.exc_info]  # no traceback anywhere
    assert [e["reason"] for e in logs if e["event"] == "http_rejected"] == ["bad_content_encoding"]


async def test_client_gone_mid_body_is_one_counted_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with receivers() as h:
        with capture_logs() as logs, caplog.at_level(logging.DEBUG):
            for _ in range(20):
                reader, writer = await connect(h)
                writer.write(
                    b"POST /falco HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 5000\r\n\r\n{"rule": '
                )
                await writer.drain()
                await until(lambda: h.server.guard.open == 1)
                writer.transport.abort()  # gone mid-body
                await until(lambda: h.server.guard.open == 0)
            await until(lambda: closed(h, "client_gone") == 20)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    gone = [e for e in logs if e.get("reason") == "client_gone"]
    assert len(gone) == 20 and {e["log_level"] for e in gone} == {"debug"}
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]


def test_fd_limit_too_low_for_the_connection_cap_is_a_warning() -> None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with capture_logs() as logs:
        soft = check_fd_limit(hard + 10_000)  # more than the hard limit can ever give
    assert soft <= hard
    warned = [e for e in logs if e["event"] == "fd_limit_low"]
    assert warned and warned[0]["needed"] > soft
    with capture_logs() as logs:
        check_fd_limit(16)
    assert not logs
