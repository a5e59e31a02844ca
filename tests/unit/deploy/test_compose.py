"""docker-compose.yml: valid against the Compose Specification schema, and wired up.

No Docker engine runs here, so the file is checked offline: the vendored compose-spec
JSON Schema (tests/data/compose, Apache-2.0), then the wiring a user relies on — Falco's
http_output reaches the detector, the detector reaches Kafka and the webhook receiver,
every mounted file exists, and every depends_on names a real service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "tests" / "data" / "compose" / "compose_spec.json"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _validator() -> jsonschema.protocols.Validator:
    # The file names draft 2019-09 with an "http://...#" URI jsonschema does not look up.
    return jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))


def test_compose_file_matches_the_spec() -> None:
    errors = [e.message for e in _validator().iter_errors(_compose())]
    assert errors == []


def test_schema_rejects_a_broken_file() -> None:
    broken = _compose()
    broken["services"]["detector"]["restart_policy_typo"] = "always"
    assert list(_validator().iter_errors(broken))


def _args(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _flag(service: dict[str, Any], name: str) -> str:
    args = _args(service)
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def _falco_dropin() -> dict[str, Any]:
    falco = _compose()["services"]["falco"]
    host_dir = next(v.split(":")[0] for v in falco["volumes"] if ":/etc/falco/config.d" in v)
    files = sorted((ROOT / host_dir).glob("*.yaml"))
    assert files, f"no Falco drop-in under {host_dir}"
    merged: dict[str, Any] = {}
    for path in files:
        merged.update(yaml.safe_load(path.read_text()))
    return merged


def test_falco_http_output_reaches_the_detector() -> None:
    services = _compose()["services"]
    dropin = _falco_dropin()
    assert dropin["json_output"] is True and dropin["http_output"]["enabled"] is True
    url = urlsplit(dropin["http_output"]["url"])
    assert url.hostname in services and url.path == "/falco"
    listen = _flag(services[url.hostname], "--listen")
    assert int(listen.rpartition(":")[2]) == url.port


def test_detector_reaches_kafka_and_the_webhook_receiver() -> None:
    services = _compose()["services"]
    detector = services["detector"]
    host, _, port = _flag(detector, "--kafka-bootstrap").rpartition(":")
    kafka = services[host]["environment"]
    assert f"PLAINTEXT://{host}:{port}" in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"] and "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert _flag(detector, "--kafka-topic")
    hook = urlsplit(_flag(detector, "--webhook-url"))
    receiver = services[hook.hostname or ""]
    assert _flag(receiver, "--listen").endswith(f":{hook.port}")
    assert detector["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(_compose()["services"]))
def test_mounted_files_exist_and_dependencies_are_services(name: str) -> None:
    compose = _compose()
    service = compose["services"][name]
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source
        elif not source.startswith("/"):
            assert source in compose["volumes"], source
    assert set(service.get("depends_on", {})) <= set(compose["services"])


def test_images_are_pinned() -> None:
    for name, service in _compose()["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), name
