"""``detector replay --report FILE``: the replay's incidents as one self-contained HTML file.

The chains of the replay go through the same incident store and view as ``detector run``
(a scratch store in a temporary directory, bounds off), and the page is the live one with
its script, style, graph library and data inlined (:func:`detector.web.assets.report`):
one file, no network, opens offline in any browser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from correlation.chain import Chain, to_record
from detector.errors import UsageError
from detector.incidents import view
from detector.incidents.query import MAX_LIMIT, Query
from detector.incidents.store import IncidentStore
from detector.web import assets

_UNBOUNDED = 1 << 62


def write_report(path: str, chains: Iterable[Chain]) -> int:
    """Write the report of ``chains`` to ``path``; returns the number of incidents."""
    with tempfile.TemporaryDirectory(prefix="lmd-report-") as scratch:
        store = IncidentStore(Path(scratch) / "incidents.sqlite3", float(_UNBOUNDED), _UNBOUNDED)
        try:
            for chain in chains:
                store.add(to_record(chain), [step.event for step in chain.steps])
            found = store.incidents(Query(limit=MAX_LIMIT))
        finally:
            store.close()
    data = {
        "incidents": [view.summary(rows) for rows in found],
        "details": {rows.id: view.detail(rows) for rows in found},
    }
    try:
        Path(path).write_text(assets.report("Incident report", data), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return len(found)
