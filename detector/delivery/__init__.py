"""What keeps an accepted event and a confirmed chain from being lost, in the order they travel.

::

    engine state ──► checkpoint   (engine snapshot + source positions, restored at start)
    chain record ──► outbox       (SQLite, committed before any sink is tried)
                 ──► loops        (one delivery loop per sink: retry, back off, dead-letter)
                 ──► sinks

Modules: ``checkpoint`` (engine snapshot file and source followers), ``store`` (the
outbox's SQLite schema and SQL), ``outbox`` (the async group-committing facade over the
store), ``loops`` (routing, per-sink delivery loops, expiry; their metrics are in
:data:`detector.metrics.SPECS`).
"""
