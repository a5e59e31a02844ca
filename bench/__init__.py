"""Benchmark: our pipeline against a streaming pipeline built on Elastic's ``eql`` engine.

``python -m bench generate`` writes seeded, realistic mixed streams (Falco alert JSON and
Kubernetes audit Event JSON lines) with planted chains and their ground truth;
``python -m bench run`` measures every stage of both pipelines on the same lines and
writes the figures table into ``bench/README.md``.

Modules::

    cluster.py      the simulated cluster: namespaces, nodes, pods and their roles
    formats.py      the cluster's pods in Falco and audit documents (shapes: ``synthetic``)
    noise.py        benign traffic shaped like a real cluster
    plant.py        the planted chains of all six kinds and their ground truth
    generate.py     merges noise and chains by event time and streams them to disk
    orders.py       the same stream disordered like real captures, and shuffled
    dataset.py      what stages share: chunked reading, wall + CPU clocks, RSS
    eql_peer.py     the peer: orjson decode, a minimal normalizer, eql sequences
    ours.py         our pipeline's stages, timed the same way
    measure.py      the floors' and the peer's stages, the stage table, ``stage`` runs
    score.py        chains against the planted truth and against the peer
    render.py       the figures tables
    timestamps.py   RFC 3339 parsing cost per shape (``python -m bench timestamps``)
    report.py       the whole run (stages in subprocesses, medians) and the README update

Imports go one way (``report → render → score``, ``measure → ours → dataset``): no
module imports one that imports it back (a test checks).

``eql`` is AGPL-3.0: it is imported only here, in ``bench/``, never by the product.
"""
