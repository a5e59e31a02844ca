"""Falco's gRPC API: ``.proto`` files and the modules generated from them.

The three ``.proto`` files (packages ``falco.schema``, ``falco.outputs``, ``falco.version``)
are written from Falco's published schema (Falco 0.24 .. 0.43; the API is gone in 0.44)
and are wire-compatible with it: same packages, service and message names, field numbers
and types. They live under ``detector/proto/`` so the generated modules import each other
as ``detector.proto.*`` without any post-processing.

The ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` modules are generated and committed;
never edit them. Regenerate with ``python -m detector.proto.regenerate`` (see that module
for the pinned protoc invocation); a unit test checks that regeneration is byte-identical.
"""
