"""Real aiohttp clients against the real receivers on loopback: good and bad input."""

from __future__ import annotations

import gzip
import importlib.metadata
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from detector.config import HttpConfig
from tests.integration.http.harness import audit_event, event_list, falco_alert, receivers

JSON = {"Content-Type": "application/json"}


async def post(url: str, data: object, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=data, headers=headers or JSON) as response:
            return response.status, await response.json(content_type=None)


async def test_falco_alert_is_accepted_and_queued() -> None:
    async with receivers() as h:
        status, body = await post(h.url + "/falco", orjson.dumps(falco_alert(1)))
        assert (status, body) == (200, {"accepted": 1})
        event = await h.queue.get()
        assert event.rule == "Launch Suspicious Network Tool in Container"
        assert event.actor.pod == "web-1"
        assert h.metrics.value("detector_events_in_total", {"source": "falco_http"}) == 1


async def test_gzip_body_is_inflated() -> None:
    async with receivers() as h:
        body = gzip.compress(orjson.dumps(falco_alert(2)))
        status, _ = await post(h.url + "/falco", body, {**JSON, "Content-Encoding": "gzip"})
        assert status == 200
        assert (await h.queue.get()).actor.pod == "web-2"


async def test_chunked_transfer_is_accepted() -> None:
    payload = orjson.dumps(falco_alert(3))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 50):
            yield payload[start : start + 50]

    async with receivers() as h:
        status, _ = await post(h.url + "/falco", chunks())
        assert status == 200
        assert (await h.queue.get()).actor.pod == "web-3"


async def test_falcosidekick_payload_keeps_its_uuid() -> None:
    uuid = "5b9e3f2c-8f1a-4d6e-9a51-0c3b2d7e6f10"
    async with receivers() as h:
        status, _ = await post(h.url + "/falco", orjson.dumps(falco_alert(4, uuid=uuid)))
        assert status == 200
        assert (await h.queue.get()).id == uuid


async def test_falco_internal_alert_is_acknowledged_not_queued() -> None:
    internal = falco_alert(5, rule="Falco internal: syscall event drop", source="internal")
    async with receivers() as h:
        status, body = await post(h.url + "/falco", orjson.dumps(internal))
        assert (status, body) == (200, {"accepted": 0})
        assert len(h.queue) == 0


async def test_audit_event_list_is_accepted() -> None:
    async with receivers() as h:
        body = event_list(audit_event(1), audit_event(2), audit_event(3))
        status, answer = await post(h.url + "/k8s-audit", body)
        assert (status, answer) == (200, {"accepted": 3})
        event = await h.queue.get()
        assert (event.verb, event.resource, event.target.namespace) == (
            "list",
            "secrets",
            "payments",
        )


async def test_audit_bad_item_is_counted_and_the_rest_accepted() -> None:
    async with receivers() as h:
        broken = audit_event(2)
        del broken["auditID"]
        status, answer = await post(h.url + "/k8s-audit", event_list(audit_event(1), broken))
        assert (status, answer) == (200, {"accepted": 1, "rejected": {"missing_field": 1}})
        assert (
            h.metrics.value(
                "detector_parse_errors_total", {"source": "k8s_audit", "reason": "missing_field"}
            )
            == 1
        )


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "reason"),
    [
        ("/falco", b"{not json", JSON, 400, "malformed_json"),
        ("/falco", b"[1, 2]", JSON, 400, "not_an_object"),
        ("/falco", orjson.dumps({"rule": "x"}), JSON, 400, "missing_field"),
        (
            "/falco",
            orjson.dumps(falco_alert()),
            {"Content-Type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "/k8s-audit",
            event_list(audit_event(), api_version="audit.k8s.io/v2"),
            JSON,
            400,
            "unknown_api_version",
        ),
        ("/k8s-audit", orjson.dumps(audit_event()), JSON, 400, "not_an_event_list"),
        ("/k8s-audit", b"\xff\xfe", JSON, 400, "bad_encoding"),
        ("/falco", b"x" * (65 * 1024), JSON, 413, "body_too_large"),
    ],
)
async def test_bad_input_gets_its_4xx_and_is_counted(
    path: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    async with receivers() as h:
        got, answer = await post(h.url + path, body, headers)
        assert (got, answer["error"]) == (status, reason)
        assert answer["detail"]
        assert (
            h.metrics.value(
                "detector_http_rejects_total", {"endpoint": path, "status": str(status)}
            )
            == 1
        )
        assert len(h.queue) == 0
        # the server is undisturbed: a good alert still goes through
        ok, _ = await post(h.url + "/falco", orjson.dumps(falco_alert()))
        assert ok == 200


async def test_chunked_body_over_cap_is_refused_while_reading() -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 4096

    async with receivers() as h:
        status, answer = await post(h.url + "/falco", endless())
        assert (status, answer["error"]) == (413, "body_too_large")


async def test_gzip_bomb_is_refused_on_inflated_size() -> None:
    bomb = gzip.compress(b"{" + b" " * (10 << 20) + b"}")  # ~10 KiB on the wire, 10 MiB inflated
    async with receivers() as h:
        status, answer = await post(h.url + "/falco", bomb, {**JSON, "Content-Encoding": "gzip"})
        assert (status, answer["error"]) == (413, "body_too_large")


async def test_bearer_token_is_required_when_configured() -> None:
    secret = "s3cr3t-token-value"
    async with receivers(HttpConfig(bearer_token=secret)) as h:
        alert = orjson.dumps(falco_alert())
        missing, _ = await post(h.url + "/falco", alert)
        wrong, answer = await post(h.url + "/falco", alert, {**JSON, "Authorization": "Bearer no"})
        right, _ = await post(
            h.url + "/falco", alert, {**JSON, "Authorization": f"Bearer {secret}"}
        )
        assert (missing, wrong, right) == (401, 401, 200)
        assert answer["error"] == "unauthorized"


async def test_health_ready_and_metrics() -> None:
    async with receivers() as h, aiohttp.ClientSession() as session:
        async with session.get(h.url + "/healthz") as response:
            assert response.status == 200
            version = importlib.metadata.version("lateral-chain-detector")
            assert await response.json() == {"status": "ok", "version": version}
        async with session.get(h.url + "/readyz") as response:
            assert response.status == 200
        await post(h.url + "/falco", orjson.dumps(falco_alert()))
        async with session.get(h.url + "/metrics") as response:
            text = await response.text()
            assert response.status == 200
            assert 'detector_events_in_total{source="falco_http"} 1.0' in text
            assert "detector_queue_depth 1.0" in text


async def test_draining_server_answers_503_with_retry_after() -> None:
    async with receivers() as h, aiohttp.ClientSession() as session:
        h.server.stop_accepting()
        async with session.get(h.url + "/readyz") as response:
            assert response.status == 503
        async with session.post(
            h.url + "/falco", data=orjson.dumps(falco_alert()), headers=JSON
        ) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["error"] == "shutting_down"
        refused = {"endpoint": "/falco", "reason": "shutting_down"}
        assert h.metrics.value("detector_http_refused_total", refused) == 1
