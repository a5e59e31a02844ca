"""Every Kubernetes manifest validates offline against the Kubernetes 1.30 schemas (strict).

The kustomization's resource lists are followed, so a file that is not wired in is caught
too; the component patches are merged onto their targets before validation, so the
patched objects are checked, not just the fragments.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
NAMESPACE = "falco"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization(directory: Path) -> dict[str, Any]:
    data = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _base_objects() -> list[dict[str, Any]]:
    return [doc for name in _kustomization(KUBE)["resources"] for doc in _docs(KUBE / name)]


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic-merge subset: maps merge, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = _merge(by_name.get(item["name"], {}), item)
        return list(by_name.values())
    return patch


def _named(items: list[Any]) -> bool:
    return all(isinstance(i, dict) and "name" in i for i in items)


def _with_grpc_component() -> list[dict[str, Any]]:
    objects = copy.deepcopy(_base_objects())
    component = KUBE / "components" / "falco-grpc"
    for patch in _kustomization(component)["patches"]:
        for doc in _docs(component / patch["path"]):
            target = _find(objects, doc["kind"], doc["metadata"]["name"])
            objects[objects.index(target)] = _merge(target, doc)
    return objects


def _ids(objects: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]


BASE = _base_objects()
GRPC = _with_grpc_component()


@pytest.mark.parametrize("obj", BASE, ids=_ids(BASE))
def test_base_manifest_validates(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("obj", GRPC, ids=_ids(GRPC))
def test_grpc_component_manifest_validates(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_every_yaml_file_is_wired_into_a_kustomization() -> None:
    wired = {KUBE / "kustomization.yaml", *(KUBE / n for n in _kustomization(KUBE)["resources"])}
    component = KUBE / "components" / "falco-grpc"
    wired |= {component / "kustomization.yaml"}
    wired |= {component / p["path"] for p in _kustomization(component)["patches"]}
    wired |= set((KUBE / "api-server").glob("*.yaml"))  # API-server files, not applied
    scale_out = KUBE / "scale-out"  # its own kustomization, tests/unit/deploy/test_scale_out.py
    wired |= {scale_out / "kustomization.yaml"}
    wired |= {scale_out / n for n in _kustomization(scale_out)["resources"]}
    assert set(KUBE.rglob("*.yaml")) == wired


def test_invalid_manifest_is_rejected() -> None:
    """The validator really checks: a typo in a pod spec fails."""
    daemonset = copy.deepcopy(_find(BASE, "DaemonSet", "falco-detector"))
    daemonset["spec"]["template"]["spec"]["containers"][1]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, K8S_VERSION, strict=True)


def _pod(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    spec = _find(objects, kind, name)["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod["containers"] if c["name"] == name)


@pytest.mark.parametrize(
    ("kind", "name"), [("DaemonSet", "falco-detector"), ("StatefulSet", "detector-audit")]
)
def test_detector_containers_are_restricted_and_probed(kind: str, name: str) -> None:
    pod = _pod(BASE, kind, name)
    assert pod["automountServiceAccountToken"] is False
    detector = _container(pod, "detector")
    context = {**pod.get("securityContext", {}), **detector["securityContext"]}
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert detector["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert detector["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"requests", "limits"} <= set(detector["resources"])


def test_service_accounts_have_no_token_and_no_rbac_is_granted() -> None:
    accounts = [o for o in BASE if o["kind"] == "ServiceAccount"]
    assert accounts and all(a["automountServiceAccountToken"] is False for a in accounts)
    assert not [o for o in BASE if o["kind"] in ("Role", "ClusterRole", "RoleBinding")]


def test_falco_and_sidecar_share_socket_dir_and_loopback_http() -> None:
    pod = _pod(BASE, "DaemonSet", "falco-detector")
    mounts = {
        c["name"]: {m["name"]: m["mountPath"] for m in c["volumeMounts"]} for c in pod["containers"]
    }
    assert mounts["falco"]["falco-socket"] == mounts["detector"]["falco-socket"] == "/run/falco"
    socket = next(v for v in pod["volumes"] if v["name"] == "falco-socket")
    assert "emptyDir" in socket
    dropin = yaml.safe_load(
        _find(BASE, "ConfigMap", "falco-detector-config")["data"]["lateral-chain.yaml"]
    )
    assert dropin["http_output"] == {
        "enabled": True,
        "url": "http://127.0.0.1:8765/falco",
        "keep_alive": True,
    }
    assert dropin["json_output"] is True
    # Falco's web server would otherwise take 8765 in the shared network namespace.
    assert dropin["webserver"]["listen_port"] != 8765
    annotations = _find(BASE, "DaemonSet", "falco-detector")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["prometheus.io/port"] == "8765"


def test_grpc_component_points_sidecar_at_the_socket() -> None:
    pod = _pod(GRPC, "DaemonSet", "falco-detector")
    args = _container(pod, "detector")["args"]
    assert args[args.index("--falco-grpc") + 1] == "unix:///run/falco/falco.sock"
    assert _container(pod, "falco")["image"].endswith(":0.43.1")
    data = _find(GRPC, "ConfigMap", "falco-detector-config")["data"]
    grpc = yaml.safe_load(data["zz-lateral-chain-grpc.yaml"])
    assert grpc["grpc"]["bind_address"] == "unix:///run/falco/falco.sock"
    assert grpc["grpc_output"]["enabled"] is True
    # Falco reads config.d in name order: the gRPC drop-in must come last to win.
    assert sorted(data)[-1] == "zz-lateral-chain-grpc.yaml"


def test_network_policies_select_real_pods() -> None:
    labels = [
        o["spec"]["template"]["metadata"]["labels"]
        for o in BASE
        if o["kind"] in ("DaemonSet", "Deployment", "StatefulSet")
    ]
    for policy in (o for o in BASE if o["kind"] == "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert any(selector.items() <= pod.items() for pod in labels), policy["metadata"]["name"]
        assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_audit_service_matches_webhook_kubeconfig() -> None:
    service = _find(BASE, "Service", "detector-audit")
    kubeconfig = yaml.safe_load((KUBE / "api-server" / "audit-webhook-kubeconfig.yaml").read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert (
        server
        == f"https://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}/k8s-audit"
    )


def test_kustomization_namespace() -> None:
    assert _kustomization(KUBE)["namespace"] == NAMESPACE


def _policy(name: str) -> dict[str, Any]:
    return _find(BASE, "NetworkPolicy", name)["spec"]  # type: ignore[no-any-return]


def test_relay_path_is_allowed_both_ways() -> None:
    """Sidecar egress → correlator:8443, and correlator ingress ← sidecars on 8443."""
    to_correlator = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "detector-audit"}}}
    egress = _policy("falco-detector")["egress"]
    assert any(
        to_correlator in rule.get("to", []) and {"protocol": "TCP", "port": 8443} in rule["ports"]
        for rule in egress
    )
    from_sidecars = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "falco-detector"}}}
    ingress = _policy("detector-audit")["ingress"]
    assert any(from_sidecars in rule.get("from", []) for rule in ingress)


def test_sidecar_mounts_the_ca_its_relay_config_names() -> None:
    pod = _pod(BASE, "DaemonSet", "falco-detector")
    mounts = {m["name"]: m["mountPath"] for m in _container(pod, "detector")["volumeMounts"]}
    sidecar = yaml.safe_load(_find(BASE, "ConfigMap", "detector-config")["data"]["sidecar.yaml"])
    assert sidecar["relay"]["http"]["ca_file"].startswith(mounts["detector-ca"] + "/")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["detector-ca"]["secret"]["secretName"] == "detector-ca"


def test_correlator_state_is_on_a_claim_and_probes_survive_mtls() -> None:
    """Outbox, checkpoint and intake log on a PersistentVolumeClaim (a rollout used to wipe
    an emptyDir); probes on the plain health port, which needs no client certificate."""
    correlator = _find(BASE, "StatefulSet", "detector-audit")
    claims = {t["metadata"]["name"] for t in correlator["spec"]["volumeClaimTemplates"]}
    pod = correlator["spec"]["template"]["spec"]
    detector = _container(pod, "detector")
    state = next(m for m in detector["volumeMounts"] if m["mountPath"] == "/var/lib/detector")
    assert state["name"] in claims
    assert state["name"] not in {v["name"] for v in pod["volumes"]}  # not an emptyDir
    ports = {p["name"]: p["containerPort"] for p in detector["ports"]}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = detector[probe]["httpGet"]
        assert (get["port"], get["scheme"]) == ("health", "HTTP"), probe
    config = yaml.safe_load(
        _find(BASE, "ConfigMap", "detector-config")["data"]["audit-receiver.yaml"]
    )
    assert config["http"]["health_listen"].endswith(f":{ports['health']}")
    assert config["checkpoint"]["path"].startswith(state["mountPath"])
    assert config["outbox"]["path"].startswith(state["mountPath"])
    assert pod["terminationGracePeriodSeconds"] > config.get("shutdown_grace_s", 10)


def test_correlator_has_a_disruption_budget() -> None:
    budget = _find(BASE, "PodDisruptionBudget", "detector-audit")
    labels = _find(BASE, "StatefulSet", "detector-audit")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] == 1
