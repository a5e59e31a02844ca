"""Benchmark: our pipeline against a streaming pipeline built on Elastic's ``eql`` engine.

``python -m bench generate`` writes seeded, realistic mixed streams (Falco alert JSON and
Kubernetes audit Event JSON lines) with planted chains and their ground truth;
``python -m bench run`` measures every stage of both pipelines on the same lines and
writes the figures table into ``bench/README.md``.

Modules::

    cluster.py      the simulated cluster: namespaces, nodes, pods and their roles
    formats.py      Falco alert and audit Event documents in their real wire shapes
    noise.py        benign traffic shaped like a real cluster
    plant.py        the planted chains of all six kinds and their ground truth
    generate.py     merges noise and chains by event time and streams them to disk
    eql_peer.py     the peer: orjson decode, a minimal normalizer, eql sequences
    ours.py         our pipeline's stages, timed the same way
    measure.py      timing, RSS and per-stage subprocess runs
    report.py       the figures table and the README update

``eql`` is AGPL-3.0: it is imported only here, in ``bench/``, never by the product.
"""
