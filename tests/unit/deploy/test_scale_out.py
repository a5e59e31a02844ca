"""deploy/kubernetes/scale-out and the compose profile `scale-out`: valid, and wired up.

Offline, like the other deploy tests: the manifests against the Kubernetes 1.30 schemas
(strict), then what a user relies on — the PDB covers the worker pods, the workers and
the stitcher run the commands with the config file the ConfigMap mounts, and that file
passes the same validation ``detector worker`` does at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from detector import config as cfg

ROOT = Path(__file__).resolve().parents[3]
SCALE_OUT = ROOT / "deploy" / "kubernetes" / "scale-out"
K8S_VERSION = "1.30.0"


def _objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((SCALE_OUT / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((SCALE_OUT / name).read_text())
        if doc
    ]


OBJECTS = _objects()


def _find(kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize(
    "obj", OBJECTS, ids=[f"{o['kind']}/{o['metadata']['name']}" for o in OBJECTS]
)
def test_manifest_validates(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_pdb_covers_the_workers_one_at_a_time() -> None:
    pdb = _find("PodDisruptionBudget", "detector-worker")["spec"]
    pods = _find("Deployment", "detector-worker")["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= pods.items()
    assert pdb["maxUnavailable"] == 1


def _config_file(tmp_path: Path) -> tuple[str, Path]:
    data = _find("ConfigMap", "detector-scaleout-config")["data"]
    [(name, text)] = data.items()
    path = tmp_path / name
    path.write_text(text)
    return name, path


@pytest.mark.parametrize(("kind", "name", "command"), [
    ("Deployment", "detector-worker", "worker"),
    ("StatefulSet", "detector-stitcher", "stitch"),
])  # fmt: skip
def test_commands_read_the_mounted_config(
    tmp_path: Path, kind: str, name: str, command: str
) -> None:
    pod = _find(kind, name)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    assert args[0] == command
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    key, path = _config_file(tmp_path)
    assert args[args.index("--config") + 1] == f"{mount['mountPath']}/{key}"
    config = cfg.load(str(path), environ={})
    assert config.worker is not None and config.worker.listen.endswith(":9102")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_worker_probes_use_the_metrics_port() -> None:
    [container] = _find("Deployment", "detector-worker")["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    key, text = next(iter(_find("ConfigMap", "detector-scaleout-config")["data"].items()))
    assert yaml.safe_load(text)["worker"]["listen"].endswith(f":{port}")


def _compose_services() -> dict[str, Any]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {n: s for n, s in services.items() if "scale-out" in s.get("profiles", [])}


def test_compose_profile_runs_three_workers_a_relay_and_a_stitcher() -> None:
    services = _compose_services()
    commands = {name: s["command"][0] for name, s in services.items() if "image" in s and
                s["image"].startswith("lateral-chain-detector")}  # fmt: skip
    assert sorted(commands.values()) == ["run", "stitch", "worker"]
    assert services["scaleout-worker"]["deploy"]["replicas"] == 3
    assert services["scaleout-relay"]["environment"]["DETECTOR_MODE"] == "relay"


def test_compose_profile_config_and_topics_fit() -> None:
    services = _compose_services()
    mounted = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
               if v.startswith("./")}  # fmt: skip
    [path] = mounted
    relay = cfg.load(str(ROOT / path), environ={"DETECTOR_MODE": "relay"})
    assert relay.relay.transport == "kafka"
    worker = cfg.load(str(ROOT / path), environ={}).worker
    assert worker is not None
    script = services["scaleout-topics"]["command"][0]
    assert f"{worker.topic}:6" in script and f"{worker.chains_topic}:1 " in script
    assert f"{worker.state_topic}:6:compact" in script
    assert relay.relay.kafka is not None and relay.relay.kafka.topic == worker.topic
