"""The Kafka sink against a real broker with security on: SASL (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), TLS and mTLS, each consumed back by a real aiokafka consumer that connects
the same way; and the failures an operator makes (wrong password, wrong CA, no client
certificate), which must be logged clearly, keep the record in the outbox and leak no secret.

All modes share one broker (``secure_kafka`` in conftest.py) with one listener per mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from structlog.testing import capture_logs

from detector.delivery.loops import Delivery
from detector.sinks.config import KafkaConnectionConfig, decode
from detector.sinks.kafka import connection_options
from tests.integration.falco_grpc.certs import Pki
from tests.unit.sinks.records import make_record

pytestmark = pytest.mark.integration
FAST_RETRY = {"initial_s": 0.2, "max_s": 0.5, "multiplier": 2.0, "jitter": 0.1}


def credentials(broker: Any) -> tuple[str, str]:
    """The one SASL user the secured broker was formatted with."""
    user, password = next(iter(broker.security.sasl_users.items()))
    return str(user), str(password)


def sasl(broker: Any, mechanism: str, **secret: str) -> dict[str, Any]:
    user, password = credentials(broker)
    return {
        "bootstrap_servers": [broker.bootstraps["SASL"]],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_username": user,
        **(secret or {"sasl_password": password}),
    }


def tls(broker: Any, listener: str, ca: Path, cert: Path | None = None) -> dict[str, Any]:
    security = {
        "bootstrap_servers": [broker.bootstraps[listener]],
        "security_protocol": "SSL",
        "tls_ca_file": str(ca),
    }
    if cert is not None:
        security |= {"tls_cert_file": str(cert), "tls_key_file": str(cert.with_suffix(".key"))}
    return security


@contextlib.asynccontextmanager
async def delivering(
    tmp_path: Path, topic: str, security: dict[str, Any]
) -> AsyncIterator[Delivery]:
    sink = {"type": "kafka", "topic": topic, "timeout_s": 5, **security}
    outbox = {"path": str(tmp_path / "outbox.sqlite3"), "retry": FAST_RETRY}
    delivery = Delivery(decode({"outbox": outbox, "sinks": [sink]}))
    task = asyncio.create_task(delivery.run())
    try:
        yield delivery
    finally:
        await delivery.close(grace_s=1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def consume(security: dict[str, Any], topic: str, want: set[str]) -> set[str]:
    """Chain ids read back from ``topic`` by a consumer with the same security options."""
    options = connection_options(KafkaConnectionConfig(**security))
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", group_id=None, **options)
    await asyncio.wait_for(consumer.start(), 20)
    seen: set[str] = set()
    deadline = time.monotonic() + 30
    try:
        while not want <= seen and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                seen |= {orjson.loads(m.value)["id"] for m in messages}
    finally:
        await asyncio.wait_for(consumer.stop(), 10)
    return seen


async def round_trip(tmp_path: Path, security: dict[str, Any]) -> None:
    topic = f"secure-{uuid.uuid4().hex[:10]}"
    records = [make_record(i) for i in range(3)]
    async with delivering(tmp_path, topic, security) as delivery:
        for record in records:
            await delivery.submit(record)
        want = {r["id"] for r in records}
        assert want <= await consume(security, topic, want)
        # the consumer can see the record before the sink's ack reaches the outbox
        for _ in range(200):
            if not (await delivery.outbox.pending_counts()).get("kafka", 0):
                break
            await asyncio.sleep(0.05)
        assert (await delivery.outbox.pending_counts()).get("kafka", 0) == 0


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_delivers(secure_kafka: Any, mechanism: str, tmp_path: Path) -> None:
    await round_trip(tmp_path, sasl(secure_kafka, mechanism))


async def test_sasl_password_from_file(secure_kafka: Any, tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text(credentials(secure_kafka)[1] + "\n")
    await round_trip(tmp_path, sasl(secure_kafka, "SCRAM-SHA-512", sasl_password_file=str(secret)))


async def test_tls_delivers(secure_kafka: Any, kafka_pki: Pki, tmp_path: Path) -> None:
    await round_trip(tmp_path, tls(secure_kafka, "SSL", kafka_pki.ca))


async def test_mtls_delivers(secure_kafka: Any, kafka_pki: Pki, tmp_path: Path) -> None:
    await round_trip(tmp_path, tls(secure_kafka, "MTLS", kafka_pki.ca, kafka_pki.client_cert))


async def refused(tmp_path: Path, security: dict[str, Any]) -> tuple[Delivery, list[Any]]:
    """Submit one record to a sink the broker refuses; its logs once it has retried."""
    record = make_record(7)
    with capture_logs() as logs:
        async with delivering(tmp_path, f"refused-{uuid.uuid4().hex[:8]}", security) as delivery:
            await delivery.submit(record)
            deadline = time.monotonic() + 30
            while sum(e["event"] == "delivery_retry" for e in logs) < 2:
                assert time.monotonic() < deadline, f"no retries logged: {logs}"
                await asyncio.sleep(0.1)
            # still waiting in the outbox: neither delivered nor dead-lettered
            assert await delivery.outbox.pending_counts() == {"kafka": 1}
            assert await delivery.outbox.dead_letters() == []
    return delivery, logs


def assert_clear_error(logs: list[Any], reason: str, *secrets: str) -> None:
    retry = next(e for e in logs if e["event"] == "delivery_retry")
    assert reason in retry["error"], retry
    failed = next(e for e in logs if e["event"] == "kafka_connect_failed")
    assert failed["log_level"] == "error" and reason in failed["reason"]
    assert not any(e["event"] == "delivery_dead_letter" for e in logs)
    text = repr(logs)
    for secret in secrets:
        assert secret not in text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_wrong_password_is_logged_and_kept(
    secure_kafka: Any, mechanism: str, tmp_path: Path
) -> None:
    wrong, right = "not-the-password-42", credentials(secure_kafka)[1]
    _, logs = await refused(tmp_path, sasl(secure_kafka, mechanism, sasl_password=wrong))
    reason = f"SASL {mechanism} authentication as 'detector' failed (check sasl_password)"
    assert_clear_error(logs, reason, wrong, right)


async def test_untrusted_broker_certificate_is_logged_and_kept(
    secure_kafka: Any, kafka_pki: Pki, tmp_path: Path
) -> None:
    _, logs = await refused(tmp_path, tls(secure_kafka, "SSL", kafka_pki.rogue_ca))
    key = kafka_pki.client_key.read_text()
    assert_clear_error(logs, "broker certificate not trusted", key)
    assert "(check tls_ca_file)" in next(e for e in logs if e["event"] == "delivery_retry")["error"]


async def test_mtls_without_client_certificate_is_logged_and_kept(
    secure_kafka: Any, kafka_pki: Pki, tmp_path: Path
) -> None:
    _, logs = await refused(tmp_path, tls(secure_kafka, "MTLS", kafka_pki.ca))
    assert_clear_error(logs, "client certificate required or refused?")


async def test_mtls_with_rogue_client_certificate_is_logged_and_kept(
    secure_kafka: Any, kafka_pki: Pki, tmp_path: Path
) -> None:
    security = tls(secure_kafka, "MTLS", kafka_pki.ca, kafka_pki.rogue_client_cert)
    _, logs = await refused(tmp_path, security)
    assert_clear_error(logs, "client certificate required or refused?")
