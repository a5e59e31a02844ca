"""``detector worker``: correlation scaled out over the partitions of the events topic.

::

    relays ─► events topic (keyed by namespace, progress markers)
                 │ partition p, one worker at a time
                 ▼
              Engine_p ─► one transaction: chains ─► chains-raw (one partition)
                                           snapshot ─► state topic, partition p
                                           offset of p (the group's commit)
    chains-raw ─► stitcher (incidents across partitions) ─► outbox ─► sinks

Modules: :mod:`.config` (the ``worker:`` section), :mod:`.state` (snapshots in a
compacted topic), :mod:`.partition` (one partition's engine and transactions),
:mod:`.member` (the consumer-group member). docs/scale-out.md has the failure semantics.

Exceptions::

    RuntimeError
     └── detector.worker.state.StateError   a snapshot's chunks cannot be read back whole
"""
