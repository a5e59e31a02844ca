"""The committed generated modules are exactly what the pinned protoc invocation produces."""

from __future__ import annotations

from pathlib import Path

from detector.proto import outputs_pb2, schema_pb2, version_pb2
from detector.proto.regenerate import PROTO_DIR, regenerate


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    written = regenerate(tmp_path)
    names = sorted(path.name for path in written)
    committed = sorted(path.name for path in PROTO_DIR.glob("*_pb2*.py*"))
    assert names == committed
    assert len(names) == 8  # 3 x _pb2.py, 3 x _pb2.pyi, 2 x _pb2_grpc.py
    for path in written:
        assert path.read_bytes() == (PROTO_DIR / path.name).read_bytes(), path.name


def test_response_field_numbers_match_falco() -> None:
    fields = {f.name: f.number for f in outputs_pb2.response.DESCRIPTOR.fields}
    assert fields == {
        "time": 1,
        "priority": 2,
        "source_deprecated": 3,
        "rule": 4,
        "output": 5,
        "output_fields": 6,
        "hostname": 7,
        "tags": 8,
        "source": 9,
    }
    assert outputs_pb2.DESCRIPTOR.package == "falco.outputs"
    methods = outputs_pb2.DESCRIPTOR.services_by_name["service"].methods_by_name
    assert methods["sub"].client_streaming and methods["sub"].server_streaming
    assert not methods["get"].client_streaming and methods["get"].server_streaming


def test_enum_aliases_share_numbers() -> None:
    assert schema_pb2.priority.Value("Warning") == schema_pb2.priority.Value("WARNING") == 4
    assert schema_pb2.priority.Value("debug") == 7
    assert schema_pb2.source.Value("K8s_audit") == schema_pb2.source.Value("k8s_audit") == 1
    assert schema_pb2.source.Value("Plugin") == 3


def test_version_response_field_numbers() -> None:
    fields = {f.name: f.number for f in version_pb2.response.DESCRIPTOR.fields}
    assert fields["engine_version"] == 11
    assert fields["engine_major"] == 9
    assert fields["build"] == 6
    assert version_pb2.DESCRIPTOR.package == "falco.version"
