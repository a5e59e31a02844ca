"""Overload (429 + Retry-After, bounded queue), TLS/mTLS on the receivers, no secrets in logs."""

from __future__ import annotations

import asyncio
import ssl
import tracemalloc
from pathlib import Path

import aiohttp
import orjson
from structlog.testing import capture_logs

from detector.config import HttpConfig, TlsConfig
from detector.logging import redact_secrets
from tests.integration.falco_grpc.certs import make_pki
from tests.integration.http.harness import audit_event, event_list, falco_alert, receivers

JSON = {"Content-Type": "application/json"}


async def test_overload_answers_429_and_the_queue_stays_bounded() -> None:
    http = HttpConfig(max_connections_per_peer=400)  # the 400 senders all share 127.0.0.1
    async with receivers(http, max_events=50) as h, aiohttp.ClientSession() as session:

        async def send(n: int) -> tuple[int, str | None]:
            body = orjson.dumps(falco_alert(n))
            async with session.post(h.url + "/falco", data=body, headers=JSON) as response:
                return response.status, response.headers.get("Retry-After")

        tracemalloc.start()
        answers = await asyncio.gather(*(send(n) for n in range(400)))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        statuses = [status for status, _ in answers]
        assert statuses.count(200) == 50
        assert statuses.count(429) == 350
        assert {after for status, after in answers if status == 429} == {"1"}
        assert len(h.queue) == 50
        refused = {"endpoint": "/falco", "reason": "queue_full"}
        assert h.metrics.value("detector_http_refused_total", refused) == 350
        assert h.metrics.value("detector_dropped_events_total", {"reason": "queue_full"}) == 0
        assert peak < 64 << 20  # 400 requests in flight, memory stays small


async def test_audit_batch_is_all_or_nothing_when_the_queue_is_nearly_full() -> None:
    async with receivers(max_events=5) as h:
        async with aiohttp.ClientSession() as session:
            batch = event_list(*(audit_event(n) for n in range(4)))
            for expected, queued in ((200, 4), (429, 4)):  # 4 fit; the next 4 do not
                async with session.post(h.url + "/k8s-audit", data=batch, headers=JSON) as r:
                    assert r.status == expected
                assert len(h.queue) == queued


async def test_a_batch_larger_than_the_room_left_is_429_queue_full_with_the_intake_log(
    tmp_path: Path,
) -> None:
    """Queue short of room for the batch (not empty): 429 queue_full, not the log's 503."""
    async with receivers(max_events=5, intake_log=tmp_path) as h:
        async with aiohttp.ClientSession() as session:
            batch = event_list(*(audit_event(n) for n in range(4)))
            for expected in (200, 429):
                async with session.post(h.url + "/k8s-audit", data=batch, headers=JSON) as r:
                    assert r.status == expected
                    answer = await r.json()
            assert answer["error"] == "queue_full"
            refused = {"endpoint": "/k8s-audit", "reason": "queue_full"}
            assert h.metrics.value("detector_http_refused_total", refused) == 1


async def test_mutual_tls_receivers(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = TlsConfig(
        cert_file=str(pki.server_cert), key_file=str(pki.server_key), client_ca_file=str(pki.ca)
    )
    async with receivers(HttpConfig(tls=tls)) as h:
        good = ssl.create_default_context(cafile=str(pki.ca))
        good.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        async with aiohttp.ClientSession() as session:
            body = orjson.dumps(falco_alert())
            async with session.post(h.url + "/falco", data=body, headers=JSON, ssl=good) as r:
                assert r.status == 200
        rogue = ssl.create_default_context(cafile=str(pki.ca))
        rogue.load_cert_chain(str(pki.rogue_client_cert), str(pki.rogue_client_key))
        for context in (rogue, ssl.create_default_context(cafile=str(pki.ca))):
            async with aiohttp.ClientSession() as session:
                try:
                    async with session.post(h.url + "/falco", data=body, ssl=context) as r:
                        status = r.status
                except aiohttp.ClientError:
                    status = 0  # handshake refused: the only acceptable outcome
                assert status == 0
        assert len(h.queue) == 1


async def test_health_port_answers_probes_without_a_client_certificate(tmp_path: Path) -> None:
    """Under mTLS a kubelet probe (no client certificate) fails on the main port; the plain
    health port answers /healthz and /readyz and serves no receiver."""
    pki = make_pki(tmp_path)
    tls = TlsConfig(
        cert_file=str(pki.server_cert), key_file=str(pki.server_key), client_ca_file=str(pki.ca)
    )
    async with receivers(HttpConfig(tls=tls, health_listen="127.0.0.1:0")) as h:
        health = f"http://127.0.0.1:{h.server.health_port}"
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/readyz"):
                async with session.get(health + path) as response:
                    assert response.status == 200, path
            async with session.post(health + "/falco", data=b"{}", headers=JSON) as response:
                assert response.status in (404, 405)  # no receiver here
            try:
                no_cert = ssl.create_default_context(cafile=str(pki.ca))
                async with session.get(h.url + "/healthz", ssl=no_cert) as response:
                    status = response.status
            except aiohttp.ClientError:
                status = 0
            assert status == 0  # what a kubelet probe gets on the mTLS port


async def test_tokens_never_reach_the_logs() -> None:
    secret = "tok-9f8e7d6c5b4a"
    async with receivers(HttpConfig(bearer_token=secret)) as h:
        with capture_logs(processors=[redact_secrets]) as logs:
            async with aiohttp.ClientSession() as session:
                headers = {**JSON, "Authorization": f"Bearer {secret}x"}
                async with session.post(h.url + "/falco", data=b"{}", headers=headers) as r:
                    assert r.status == 401
    assert any(entry.get("reason") == "unauthorized" for entry in logs)
    assert secret not in repr(logs)


def test_redaction_processor_covers_keys_nested_maps_and_free_text() -> None:
    event = {
        "event": "x",
        "authorization": "Bearer abc.def",
        "headers": {"Authorization": "Bearer abc.def", "Accept": "*/*"},
        "detail": "sent Bearer abc.def to server",
        "bearer_token": "abc.def",
        "key_file": "/etc/tls/client.key",
        "sasl_password": "hunter2",
    }
    out = redact_secrets(None, "info", dict(event))
    assert "abc.def" not in repr(out)
    assert "hunter2" not in repr(out)
    assert out["headers"]["Accept"] == "*/*"
    assert out["key_file"] == "/etc/tls/client.key"
