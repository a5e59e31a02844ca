"""The consumer against a real gRPC server over a unix socket (Falco's default transport)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from structlog.testing import capture_logs

from detector.proto import outputs_pb2
from detector.sources.falco_grpc import FalcoGrpcConfig
from tests.integration.falco_grpc.conftest import LOOP, Start, eventually
from tests.integration.falco_grpc.fake_falco import FakeFalco, alert, serve

pytestmark = LOOP


def _config(socket_path: Path, **overrides: object) -> FalcoGrpcConfig:
    base: dict[str, object] = {
        "endpoint": f"unix://{socket_path}",
        "keepalive_s": 0.02,
        "keepalive_idle_s": 0.05,
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.1,
        "connect_timeout_s": 1.0,
    }
    base.update(overrides)
    return FalcoGrpcConfig(**base)  # type: ignore[arg-type]


T = TypeVar("T")


async def settled(read: Callable[[], T], quiet_s: float, within: float = 10.0) -> T:
    """Wait until ``read()`` has not changed for ``quiet_s``; fail after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    value, since = read(), loop.time()
    while loop.time() - since < quiet_s:
        assert loop.time() < deadline, f"still changing after {within} s: {value}"
        await asyncio.sleep(0.02)
        if (current := read()) != value:
            value, since = current, loop.time()
    return value


async def test_alerts_arrive_as_events_in_order(socket_path: Path, consumer: Start) -> None:
    queue = deque(alert(seq) for seq in range(50))
    server, _ = await serve(FakeFalco(queue), f"unix://{socket_path}")
    try:
        with capture_logs() as logs:
            running = consumer(_config(socket_path))
            await eventually(lambda: len(running.events) == 50)
        assert running.seqs() == list(range(50))
        first = running.events[0]
        assert first.source == "falco"
        assert first.rule == "Launch Suspicious Network Tool in Container"
        assert first.priority == "warning"
        assert first.time_ns == 1_700_000_000 * 10**9 + 123_456_789
        assert first.actor.pod_ref == "shop/web-1"
        assert "T1046" in first.tags
        assert running.source.ready()
        connected = [e for e in logs if e["event"] == "falco_grpc.connected"]
        assert connected[0]["falco_version"] == "0.43.1"
        assert any(e["event"] == "falco_grpc.deprecated" for e in logs)
    finally:
        await server.stop(None)


async def test_keepalive_requests_reach_the_server(socket_path: Path, consumer: Start) -> None:
    falco = FakeFalco(deque())
    server, _ = await serve(falco, f"unix://{socket_path}")
    try:
        consumer(_config(socket_path))
        # idle: one empty request every keepalive_idle_s (0.05 s) at most
        await eventually(lambda: falco.requests >= 5, within=3)
        falco.queue.append(alert(1))
        await eventually(lambda: falco.sent == 1, within=3)
    finally:
        await server.stop(None)


async def test_server_restart_loses_nothing_still_queued(
    socket_path: Path, consumer: Start
) -> None:
    queue: deque[outputs_pb2.response] = deque(alert(seq) for seq in range(20))
    server, _ = await serve(FakeFalco(queue), f"unix://{socket_path}")
    with capture_logs() as logs:
        running = consumer(_config(socket_path))
        await eventually(lambda: len(running.events) == 20)
        await server.stop(None)  # Falco restarts; alerts keep queueing meanwhile
        queue.extend(alert(seq) for seq in range(20, 40))
        await eventually(lambda: running.source.stats.reconnects >= 2)
        assert not running.source.ready()
        server, _ = await serve(FakeFalco(queue), f"unix://{socket_path}")
        try:
            await eventually(lambda: len(running.events) == 40)
            # read before the test's own stop below, which the consumer may log too
            events = [e["event"] for e in logs]
        finally:
            await server.stop(None)
    assert running.seqs() == list(range(40))
    assert events.count("falco_grpc.disconnected") == 1
    assert events.count("falco_grpc.connected") == 2
    # retries while Falco is down are counted, but logged once per reason, not per attempt
    assert events.count("falco_grpc.connect_failed") <= 2


async def test_bad_alert_is_counted_and_skipped(socket_path: Path, consumer: Start) -> None:
    bad = alert(1)
    bad.rule = ""  # parse_falco rejects an alert without a rule
    internal = alert(2)
    internal.source = "internal"
    queue = deque([alert(0), bad, internal, alert(3)])
    server, _ = await serve(FakeFalco(queue), f"unix://{socket_path}")
    try:
        with capture_logs() as logs:
            running = consumer(_config(socket_path))
            await eventually(lambda: running.source.stats.received == 4)
            await eventually(lambda: len(running.events) == 2)
        assert running.seqs() == [0, 3]
        assert running.source.stats.parse_errors == {"missing_field": 1, "falco_internal": 1}
        assert [e["reason"] for e in logs if e["event"] == "falco_grpc.bad_alert"] == [
            "missing_field"
        ]
    finally:
        await server.stop(None)


async def test_slow_consumer_stops_requesting(socket_path: Path, consumer: Start) -> None:
    # 3000 alerts of ~2 KiB: far more than HTTP/2 windows hold in flight.
    falco = FakeFalco(deque(alert(seq, pad=2000) for seq in range(3000)))
    server, _ = await serve(falco, f"unix://{socket_path}")
    try:
        running = consumer(_config(socket_path))
        running.gate.clear()  # emit blocks: the engine's queue is full
        await eventually(lambda: falco.requests >= 1)
        # The server writes until the HTTP/2 windows are full, however long a busy
        # machine takes: wait for its counters to stop, 10 keepalive intervals quiet.
        requests, sent = await settled(lambda: (falco.requests, falco.sent), quiet_s=0.5)
        await asyncio.sleep(0.3)  # a negative check: 6 more keepalive intervals
        assert falco.requests == requests  # no new requests while emit is blocked
        assert falco.sent == sent  # and the server stopped writing (flow control)
        assert len(falco.queue) > 1000  # alerts wait in Falco's queue, not in our memory
        assert running.source.stats.received <= 1
        running.gate.set()
        await eventually(lambda: len(running.events) == 3000)
        assert running.seqs() == list(range(3000))
        assert falco.requests > requests
    finally:
        await server.stop(None)


async def test_get_mode_drains_and_returns(socket_path: Path, consumer: Start) -> None:
    queue = deque(alert(seq) for seq in range(5))
    server, _ = await serve(FakeFalco(queue), f"unix://{socket_path}")
    try:
        running = consumer(_config(socket_path, mode="get"))
        assert running.task is not None
        await asyncio.wait_for(running.task, timeout=5)
        assert running.seqs() == list(range(5))
        assert not queue
    finally:
        await server.stop(None)


async def test_server_that_never_answers_times_out_and_retries(
    socket_path: Path, consumer: Start
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, answer nothing

    silent = await asyncio.start_unix_server(accept_and_hold, path=str(socket_path))
    try:
        with capture_logs() as logs:
            running = consumer(_config(socket_path, connect_timeout_s=0.2))
            await eventually(lambda: running.source.stats.reconnects >= 3, within=10)
        assert running.task is not None and not running.task.done()
        assert not running.source.ready()
        failures = [e for e in logs if e["event"] == "falco_grpc.connect_failed"]
        assert len(failures) == 1  # once per state change, not per retry
        assert failures[0]["reason"] == "deadline_exceeded"
        assert "connect_timeout_s" in failures[0]["hint"]
    finally:
        silent.close()
        for writer in held:
            writer.close()
        await silent.wait_closed()


async def test_no_server_at_all_retries_without_crashing(
    socket_path: Path, consumer: Start
) -> None:
    with capture_logs() as logs:
        running = consumer(_config(socket_path))
        await eventually(lambda: running.source.stats.reconnects >= 3)
    assert running.task is not None and not running.task.done()
    assert [e["reason"] for e in logs if e["event"] == "falco_grpc.connect_failed"] == [
        "unavailable"
    ]
