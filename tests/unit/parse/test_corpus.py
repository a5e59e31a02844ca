"""Every line of the published corpus (tests/data, Apache-2.0) parses; nothing is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from correlation.event import FALCO, K8S_AUDIT
from detector.parse import parse_line

DATA = Path(__file__).resolve().parents[2] / "data"
AUDIT_FILES = sorted((DATA / "k8s-audit" / "falco-trace-files").glob("*.json"))
FALCO_FILES = sorted((DATA / "falco").glob("*.json"))


def _events(path: Path) -> list:  # type: ignore[type-arg]
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    return [event for line in lines for event in parse_line(line)]


def test_corpus_is_present() -> None:
    assert len(AUDIT_FILES) == 21
    assert len(FALCO_FILES) == 1


@pytest.mark.parametrize("path", AUDIT_FILES, ids=lambda p: p.stem)
def test_every_audit_trace_file_parses(path: Path) -> None:
    events = _events(path)
    expected = 6 if path.stem == "create_configmap_sensitive_values" else 1
    assert len(events) == expected
    for event in events:
        assert event.source == K8S_AUDIT
        assert event.id.endswith(("/ResponseComplete", "/ResponseStarted"))
        assert event.time_ns > 1_500_000_000 * 10**9
        assert event.verb in ("create", "delete")


def test_falco_json_output_file_parses() -> None:
    events = _events(FALCO_FILES[0])
    assert len(events) == 8
    assert {e.rule for e in events} == {"open_from_cat"}
    assert all(e.priority == "warning" and e.source == FALCO for e in events)
    assert len({e.id for e in events}) == 8  # distinct alerts, distinct derived ids
    # JSON numbers in output_fields become the strings gRPC would have carried
    assert events[0].fields["evt.time.iso8601"] == "1470327477881781397"
    assert events[0].time_ns == 1470327477881781397


def test_exec_trace_carries_target_pod_and_command() -> None:
    (event,) = _events(DATA / "k8s-audit" / "falco-trace-files" / "exec_pod.json")
    assert (event.resource, event.subresource, event.response_code) == ("pods", "exec", 101)
    assert event.target.pod_ref == "default/nginx-deployment-7998647bdf-phvq7"
    assert event.fields["exec.command"] == "bash"
    assert event.fields["exec.container"] == "nginx1"
    assert "?" not in event.fields["request_uri"]
    assert event.actor.ips == ("192.168.99.1",)


def test_controller_pod_creation_names_the_created_pod() -> None:
    path = DATA / "k8s-audit" / "falco-trace-files" / "create_nginx_pod_privileged.json"
    (event,) = _events(path)
    assert event.actor.service_account == "kube-system:replicaset-controller"
    assert event.actor.namespace == "kube-system"
    assert event.target.pod_ref == "default/nginx-deployment-5cdcc99dbf-rgw6z"
    assert event.fields["workload.generate_name"] == "nginx-deployment-5cdcc99dbf-"
    assert event.fields["workload.kind"] == "pods"


def test_configmap_and_secret_bodies_never_travel() -> None:
    folder = DATA / "k8s-audit" / "falco-trace-files"
    for name in ("create_configmap_sensitive_values", "create_secret", "create_kube_system_secret"):
        for event in _events(folder / f"{name}.json"):
            text = repr(event)
            assert "aws_secret_access_key" not in text and "MY-KEY" not in text
            assert "workload.kind" not in event.fields
