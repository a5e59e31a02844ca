"""The ``incidents:`` and ``cluster:`` parts of the service configuration."""

from __future__ import annotations

from typing import Annotated

from detector.sinks.config import ConfigStruct, doc


class IncidentsConfig(ConfigStruct):
    """The local incident store behind ``/incidents``, ``detector incidents`` and ``show``."""

    # On by default beside the outbox: delivered records leave the outbox, and without
    # this nothing would be left on the host to look at.
    path: Annotated[str, doc("SQLite file of chains and incidents; empty = off")] = (
        "var/incidents.sqlite3"
    )
    max_age_s: Annotated[float, doc("chains are pruned this long after they were stored", gt=0)] = (
        30 * 86400.0
    )
    max_bytes: Annotated[
        int, doc("stored records + evidence beyond this size: oldest chains pruned", ge=1 << 20)
    ] = 256 << 20
    merge_window_s: Annotated[
        float, doc("incidents sharing a pod within this event time are shown as one", ge=0)
    ] = 3600.0
    public_url: Annotated[
        str,
        doc("URL analysts reach this listener at; records, Slack and webhooks link to the page"),
    ] = ""
    pages: Annotated[bool, doc("serve /incidents pages and /api/incidents on http.listen")] = True

    def __post_init__(self) -> None:
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise ValueError("public_url must be an http(s) URL")
        self.public_url = self.public_url.rstrip("/")


class ClusterConfig(ConfigStruct):
    """Which cluster this detector watches (named in every record, message and finding)."""

    name: Annotated[str, doc("cluster name; empty = not named in records")] = ""
