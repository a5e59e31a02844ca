"""gRPC response -> Falco JSON alert dict, config validation, and reconnect backoff."""

from __future__ import annotations

import random

import msgspec
import pytest

from detector.parse.falco import parse_falco
from detector.proto import outputs_pb2, schema_pb2
from detector.sources.backoff import Backoff
from detector.sources.falco_grpc import FalcoGrpcConfig
from detector.sources.falco_grpc_wire import (
    method_path,
    response_to_alert,
    rfc3339_from_timestamp,
)


def _response() -> outputs_pb2.response:
    response = outputs_pb2.response(
        priority=schema_pb2.NOTICE,
        rule="Contact K8S API Server From Container",
        output="13:44:05.478445995: Notice ...",
        hostname="node-2",
        tags=["k8s", "T1565"],
        source="syscall",
        output_fields={"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "fd.sport": "443"},
    )
    response.time.seconds = 1685022245
    response.time.nanos = 478445995
    return response


def test_response_becomes_falco_json_alert() -> None:
    assert response_to_alert(_response()) == {
        "time": "2023-05-25T13:44:05.478445995Z",
        "priority": "Notice",
        "rule": "Contact K8S API Server From Container",
        "output": "13:44:05.478445995: Notice ...",
        "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "fd.sport": "443"},
        "hostname": "node-2",
        "tags": ["k8s", "T1565"],
        "source": "syscall",
    }


def test_same_alert_gets_same_event_id_as_over_http() -> None:
    http_doc = dict(response_to_alert(_response()))
    http_doc["output_fields"] = {"k8s.ns.name": "shop", "k8s.pod.name": "web-1", "fd.sport": 443}
    assert parse_falco(response_to_alert(_response())).id == parse_falco(http_doc).id


def test_source_falls_back_to_deprecated_enum_and_unknown_priority_is_kept() -> None:
    response = _response()
    response.source = ""
    response.source_deprecated = schema_pb2.PLUGIN
    response.priority = 42  # type: ignore[assignment]  # proto3 enums are open on the wire
    alert = response_to_alert(response)
    assert alert["source"] == "plugin"
    assert alert["priority"] == "42"


def test_timestamp_pads_nanoseconds() -> None:
    assert rfc3339_from_timestamp(0, 5) == "1970-01-01T00:00:00.000000005Z"


def test_method_paths_come_from_descriptors() -> None:
    service = outputs_pb2.DESCRIPTOR.services_by_name["service"]
    assert method_path(service, "sub") == "/falco.outputs.service/sub"
    assert method_path(service, "get") == "/falco.outputs.service/get"


def _decode(doc: dict[str, object]) -> FalcoGrpcConfig:
    return msgspec.convert(doc, FalcoGrpcConfig)


def test_config_defaults_and_unix_endpoint() -> None:
    config = _decode({"endpoint": "unix:///run/falco/falco.sock"})
    assert config.enabled and config.mode == "sub"
    assert (config.keepalive_s, config.keepalive_idle_s) == (0.1, 1.0)
    assert not _decode({}).enabled


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"endpoint": "falco:5060"}, "ca, cert, key: a TCP endpoint needs"),
        ({"endpoint": "falco:5060", "ca": "a", "cert": "b"}, "key: a TCP endpoint needs"),
        ({"endpoint": "falco"}, "endpoint: expected unix:///path or HOST:PORT"),
        ({"endpoint": "falco:99999", "ca": "a", "cert": "b", "key": "c"}, "endpoint: port"),
        ({"endpoint": "unix://"}, "endpoint: unix:// needs a socket path"),
        ({"keepalive_s": 2.0}, "keepalive_idle_s: must be >= keepalive_s"),
        ({"backoff_initial_s": 60.0}, "backoff_max_s: must be >= backoff_initial_s"),
        ({"keepalive_s": 0}, "Expected `float` > 0.0 - at `$.keepalive_s`"),
        ({"mode": "poll"}, "at `$.mode`"),
        ({"endpointt": "x"}, "unknown field `endpointt`"),
    ],
)
def test_config_errors_name_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        _decode(doc)
    assert message in str(info.value)


def test_tcp_endpoint_with_all_files_is_valid() -> None:
    config = _decode({"endpoint": "[::1]:5060", "ca": "ca", "cert": "c", "key": "k"})
    assert config.endpoint == "[::1]:5060"


def test_backoff_full_jitter_grows_to_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, rng=random.Random(7))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling())
        assert 0.0 <= backoff.next_delay() <= ceilings[-1]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.ceiling() == 0.5
    for _ in range(2000):  # no overflow after very many attempts
        backoff.next_delay()
    assert backoff.ceiling() == 4.0


def test_backoff_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(0, 1)
    with pytest.raises(ValueError, match="initial"):
        Backoff(2, 1)
