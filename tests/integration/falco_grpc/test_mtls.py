"""The consumer against a real gRPC server over TCP with mutual TLS (Falco's network mode)."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from structlog.testing import capture_logs

from detector.sources.falco_grpc import FalcoGrpcConfig
from tests.integration.falco_grpc.certs import Pki
from tests.integration.falco_grpc.conftest import LOOP, Start, eventually
from tests.integration.falco_grpc.fake_falco import (
    FakeFalco,
    alert,
    mtls_server_credentials,
    serve,
)

pytestmark = LOOP


@pytest_asyncio.fixture(loop_scope="session")
async def falco_tls(pki: Pki) -> AsyncIterator[tuple[FakeFalco, int]]:
    """A Falco-like server on 127.0.0.1 that requires a client certificate from our CA."""
    falco = FakeFalco(deque(alert(seq) for seq in range(10)))
    credentials = mtls_server_credentials(
        pki.ca.read_bytes(), pki.server_cert.read_bytes(), pki.server_key.read_bytes()
    )
    server, port = await serve(falco, "127.0.0.1:0", credentials)
    yield falco, port
    await server.stop(None)


def _config(port: int, ca: Path, cert: Path, key: Path) -> FalcoGrpcConfig:
    return FalcoGrpcConfig(
        endpoint=f"127.0.0.1:{port}",
        ca=str(ca),
        cert=str(cert),
        key=str(key),
        keepalive_s=0.02,
        keepalive_idle_s=0.05,
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
        connect_timeout_s=2.0,
    )


async def test_mtls_stream(pki: Pki, falco_tls: tuple[FakeFalco, int], consumer: Start) -> None:
    _, port = falco_tls
    running = consumer(_config(port, pki.ca, pki.client_cert, pki.client_key))
    await eventually(lambda: len(running.events) == 10)
    assert running.seqs() == list(range(10))
    assert running.source.ready()


async def test_client_cert_from_another_ca_is_refused(
    pki: Pki, falco_tls: tuple[FakeFalco, int], consumer: Start
) -> None:
    falco, port = falco_tls
    with capture_logs() as logs:
        running = consumer(_config(port, pki.ca, pki.rogue_client_cert, pki.rogue_client_key))
        await eventually(lambda: running.source.stats.reconnects >= 3)
    assert running.task is not None and not running.task.done()
    assert not running.events and falco.sent == 0
    failures = [e for e in logs if e["event"] == "falco_grpc.connect_failed"]
    assert failures, "a refused client certificate must be logged"
    assert failures[0]["reason"] == "unavailable"
    assert "root_certs" in failures[0]["hint"]
    assert failures[0]["endpoint"] == f"127.0.0.1:{port}"
    assert len(failures) <= 2  # logged per state change, not per retry
    for entry in logs:  # never key material, at most the key's path
        assert "PRIVATE KEY" not in str(entry)


async def test_server_cert_from_unknown_ca_is_rejected(
    pki: Pki, falco_tls: tuple[FakeFalco, int], consumer: Start
) -> None:
    falco, port = falco_tls
    with capture_logs() as logs:
        running = consumer(_config(port, pki.rogue_ca, pki.client_cert, pki.client_key))
        await eventually(lambda: running.source.stats.reconnects >= 3)
    assert running.task is not None and not running.task.done()
    assert falco.sent == 0
    failures = [e for e in logs if e["event"] == "falco_grpc.connect_failed"]
    assert len(failures) == 1
    assert failures[0]["hint"].startswith("TLS handshake failed")


async def test_unreadable_key_file_is_a_clear_error(
    pki: Pki, falco_tls: tuple[FakeFalco, int], consumer: Start, tmp_path: Path
) -> None:
    _, port = falco_tls
    missing = tmp_path / "nope.key"
    with capture_logs() as logs:
        running = consumer(_config(port, pki.ca, pki.client_cert, missing))
        await eventually(lambda: running.source.stats.reconnects >= 2)
    failures = [e for e in logs if e["event"] == "falco_grpc.connect_failed"]
    assert [f["reason"] for f in failures] == ["tls_files"]
    assert str(missing) in failures[0]["detail"]
