"""Big, bad and mixed audit batches: one pass, one summary line, the good items kept."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from structlog.testing import capture_logs

from tests.integration.http.harness import audit_event, event_list, falco_alert, receivers

JSON = {"Content-Type": "application/json"}


def empty_items(count: int) -> bytes:
    return (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        + b",".join([b"{}"] * count)
        + b"]}"
    )


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, dict]:
    async with session.post(url, data=body, headers=JSON) as response:
        return response.status, await response.json()


async def test_100k_bad_items_are_one_pass_one_line_and_health_keeps_answering() -> None:
    body = empty_items(100_000)
    async with receivers(max_events=200_000, cap=1 << 20) as h:
        async with aiohttp.ClientSession() as session:
            with capture_logs() as logs:
                batch = asyncio.ensure_future(post(session, h.url + "/k8s-audit", body))
                health_before_batch = 0
                while not batch.done():
                    async with session.get(h.url + "/healthz") as response:
                        assert response.status == 200
                    health_before_batch += not batch.done()
                status, answer = await batch
    assert (status, answer) == (200, {"accepted": 0, "rejected": {"missing_field": 100_000}})
    # /healthz was answered while the batch was still being decoded (sliced decoding)
    assert health_before_batch >= 2
    summary = [e for e in logs if e["event"] == "http_items_rejected"]
    assert len(summary) == 1 and summary[0]["rejected"] == {"missing_field": 100_000}
    assert len(logs) < 10  # never a line per item
    labels = {"source": "k8s_audit", "reason": "missing_field"}
    assert h.metrics.value("detector_parse_errors_total", labels) == 100_000


async def test_a_batch_larger_than_the_queue_can_ever_hold_is_413() -> None:
    async with receivers(max_events=1000, cap=1 << 20) as h, aiohttp.ClientSession() as session:
        status, answer = await post(session, h.url + "/k8s-audit", empty_items(100_000))
        assert (status, answer["error"]) == (413, "too_many_events")
        assert len(h.queue) == 0
        parse = {"source": "k8s_audit", "reason": "missing_field"}
        assert h.metrics.value("detector_parse_errors_total", parse) == 0  # items never decoded


async def test_one_deeply_nested_item_costs_one_item() -> None:
    deep = b"[" * 2000 + b"]" * 2000
    good = [orjson.dumps(audit_event(n)) for n in range(3)]
    body = (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        + b",".join([good[0], b'{"x":' + deep + b"}", good[1], good[2]])
        + b"]}"
    )
    async with receivers(cap=1 << 20) as h, aiohttp.ClientSession() as session:
        status, answer = await post(session, h.url + "/k8s-audit", body)
        assert (status, answer) == (200, {"accepted": 3, "rejected": {"too_deep": 1}})
        ids = [(await h.queue.get()).id for _ in range(3)]
        assert len(set(ids)) == 3


async def test_a_deep_document_is_still_a_400() -> None:
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":' + b"[" * 2000
    body += b"]" * 2000 + b',"items":[]}'
    async with receivers(cap=1 << 20) as h, aiohttp.ClientSession() as session:
        status, answer = await post(session, h.url + "/k8s-audit", body)
        assert (status, answer["error"]) == (400, "too_deep")


async def test_a_full_queue_refuses_before_reading_or_decoding() -> None:
    async with receivers(max_events=1) as h, aiohttp.ClientSession() as session:
        assert (await post(session, h.url + "/falco", orjson.dumps(falco_alert())))[0] == 200
        # malformed JSON: a 400 if it were decoded, but the queue is full, so 429 first
        status, answer = await post(session, h.url + "/falco", b"{not json")
        assert (status, answer["error"]) == (429, "queue_full")
        status, answer = await post(session, h.url + "/k8s-audit", event_list(audit_event()))
        assert (status, answer["error"]) == (429, "queue_full")
        assert (
            h.metrics.value("detector_http_rejects_total", {"endpoint": "/falco", "status": "400"})
            == 0
        )


async def test_a_batch_larger_than_the_room_left_is_429_before_its_items_are_decoded() -> None:
    async with receivers(max_events=10) as h, aiohttp.ClientSession() as session:
        status, _ = await post(
            session, h.url + "/k8s-audit", event_list(*map(audit_event, range(6)))
        )
        assert status == 200
        # 5 items, all bad: decoded, each would be counted; 4 of room left, so none is
        status, answer = await post(session, h.url + "/k8s-audit", empty_items(5))
        assert (status, answer["error"]) == (429, "queue_full")
        errors = {"source": "k8s_audit", "reason": "missing_field"}
        assert h.metrics.value("detector_parse_errors_total", errors) == 0
        # 4 of them fit: decoded, counted by reason, and nothing else is queued
        status, answer = await post(session, h.url + "/k8s-audit", empty_items(4))
        assert (status, answer) == (200, {"accepted": 0, "rejected": {"missing_field": 4}})
        assert h.metrics.value("detector_parse_errors_total", errors) == 4
        assert len(h.queue) == 6
