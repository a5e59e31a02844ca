"""The store inside the service: records annotated, a failing store counted, prunes counted."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from detector.incidents.config import IncidentsConfig
from detector.incidents.query import Query
from detector.incidents.service import IncidentService, RecordAnnotator
from detector.metrics import Metrics
from tests.unit.incidents.scenario import chains


def _service(tmp_path: Path, metrics: Metrics, **config: object) -> IncidentService:
    return IncidentService(
        IncidentsConfig(
            path=str(tmp_path / "i.sqlite3"), public_url="https://lmd.example/", **config
        ),  # type: ignore[arg-type]
        metrics,
    )


async def test_records_get_cluster_and_link_and_are_stored(tmp_path: Path) -> None:
    service = _service(tmp_path, Metrics())
    chain = chains()[0]
    record = await RecordAnnotator("prod-eu", service, "https://lmd.example")(chain)
    assert record["cluster"] == "prod-eu"
    assert record["url"] == f"https://lmd.example/incidents/{chain.incident}"
    (found,) = await service.summaries(Query())
    assert found["id"] == chain.incident and found["cluster"] == "prod-eu"
    assert found["url"] == record["url"]
    detail = await service.detail(chain.id.replace("lmc-", "inc-"))
    assert detail is None
    service.close()


async def test_without_cluster_or_url_the_record_is_plain_v1(tmp_path: Path) -> None:
    record = await RecordAnnotator()(chains()[0])
    assert "cluster" not in record and "url" not in record


async def test_a_failing_store_is_counted_and_the_record_still_returned(tmp_path: Path) -> None:
    metrics = Metrics()
    service = _service(tmp_path, metrics)
    service.close()  # every store call now fails
    with capture_logs() as logs:
        record = await RecordAnnotator("", service)(chains()[0])
    assert record["id"] == chains()[0].id
    assert metrics.value("detector_incident_store_errors_total") == 1
    assert [entry["event"] for entry in logs] == ["incident_store_failed"]


async def test_pruned_chains_are_counted_by_reason(tmp_path: Path) -> None:
    metrics = Metrics()
    service = _service(tmp_path, metrics, max_bytes=1 << 20)
    service._store.max_bytes = 1  # noqa: SLF001 - below any chain: each insert prunes the older ones
    annotate = RecordAnnotator("", service)
    for chain in chains()[:3]:
        await annotate(chain)
    assert metrics.value("detector_incident_store_pruned_total", {"reason": "size"}) == 3
    assert metrics.value("detector_incident_store_errors_total") == 0
    service.close()
