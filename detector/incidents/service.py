"""The incident store inside ``detector run``: one worker thread, and the chain annotator.

:class:`IncidentService` runs every store call on a single thread, so the event loop never
waits on SQLite and one connection serves writes (from the engine) and reads (from the
pages) without interleaving transactions.

:class:`RecordAnnotator` is what the correlator turns each confirmed chain into a record
with (see :class:`detector.pipeline.Correlator`): the chain record v1, plus the optional
``cluster`` (``cluster.name``) and ``url`` (the incident's page, when
``incidents.public_url`` is set), stored with its evidence before it is delivered. A store
failure is logged and counted and the record is delivered anyway: the sinks matter more
than the local copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from correlation.chain import Chain, to_record
from detector.incidents import view
from detector.incidents.config import IncidentsConfig
from detector.incidents.query import Query
from detector.incidents.store import IncidentStore
from detector.logging import get_logger
from detector.metrics import Metrics

log = get_logger("detector.incidents")
T = TypeVar("T")


def page_url(public_url: str, incident: str) -> str:
    """The incident's page under ``public_url``, or ``""`` when none is configured."""
    return f"{public_url}/incidents/{quote(incident, safe='')}" if public_url else ""


class IncidentService:
    """Async access to one :class:`IncidentStore`, all calls on one worker thread."""

    def __init__(
        self,
        config: IncidentsConfig,
        metrics: Metrics | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._metrics = metrics or Metrics()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incidents")
        pruned = self._metrics.incident_store_pruned
        self._store = IncidentStore(
            Path(config.path), config.max_age_s, config.max_bytes, config.merge_window_s, now,
            on_prune=lambda reason, count: pruned.labels(reason=reason).inc(count),
        )  # fmt: skip

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def add(self, record: dict[str, Any], chain: Chain) -> None:
        await self._call(self._store.add, record, [step.event for step in chain.steps])

    async def summaries(self, query: Query) -> list[dict[str, Any]]:
        found = await self._call(self._store.incidents, query)
        return [view.summary(rows, self.url(rows.id)) for rows in found]

    async def detail(self, incident: str) -> dict[str, Any] | None:
        rows = await self._call(self._store.incident, incident)
        return None if rows is None else view.detail(rows, self.url(rows.id))

    def url(self, incident: str) -> str:
        return page_url(self.config.public_url, incident)

    def failed(self, chain: Chain, exc: Exception) -> None:
        """A chain the store could not keep: counted and logged (it is delivered anyway)."""
        self._metrics.incident_store_errors.inc()
        log.error("incident_store_failed", chain=chain.id, error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._pool.submit(self._store.close).result()
        self._pool.shutdown()


class RecordAnnotator:
    """Chain → published record: cluster and page link added, stored before delivery."""

    def __init__(
        self, cluster: str = "", service: IncidentService | None = None, public_url: str = ""
    ) -> None:
        self._cluster, self._service, self._public_url = cluster, service, public_url

    async def __call__(self, chain: Chain) -> dict[str, Any]:
        record = annotate(
            to_record(chain), self._cluster, page_url(self._public_url, chain.incident)
        )
        if self._service is not None:
            try:
                await self._service.add(record, chain)
            except Exception as exc:  # noqa: BLE001 - any store failure: deliver regardless
                self._service.failed(chain, exc)
        return record


def annotate(record: dict[str, Any], cluster: str, url: str) -> dict[str, Any]:
    """The record with the optional v1 fields ``cluster`` and ``url`` set when known."""
    if cluster:
        record["cluster"] = cluster
    if url:
        record["url"] = url
    return record
