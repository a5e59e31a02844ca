"""The API-server side: the audit policy (audit.k8s.io/v1 Policy) and the webhook kubeconfig.

No API server runs here, so the policy is checked two ways: structurally against the
Policy type's fields and enums, and behaviourally with a small first-match evaluator of
the documented rule semantics (a `pods` rule does not match `pods/exec`, `""` is the core
group, `*` matches anything) run over the requests the chains care about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

API_SERVER = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "api-server"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
RULE_KEYS = {
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
}
POLICY_KEYS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}


def _policy() -> dict[str, Any]:
    data = yaml.safe_load((API_SERVER / "audit-policy.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_policy_shape() -> None:
    policy = _policy()
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert set(policy) <= POLICY_KEYS
    assert set(policy.get("omitStages", [])) <= STAGES
    for rule in policy["rules"]:
        assert set(rule) <= RULE_KEYS, rule
        assert rule["level"] in LEVELS
        assert set(rule.get("omitStages", [])) <= STAGES
        for group in rule.get("resources", []):
            assert set(group) <= {"group", "resources", "resourceNames"}
            assert all(isinstance(r, str) and r for r in group.get("resources", []))
        # nonResourceURLs cannot be combined with resources (the API server rejects it).
        assert not ("nonResourceURLs" in rule and "resources" in rule)


def test_request_received_is_omitted() -> None:
    assert "RequestReceived" in _policy()["omitStages"]


def _matches_resource(rule: dict[str, Any], group: str, resource: str, sub: str) -> bool:
    if "nonResourceURLs" in rule:
        return False
    if "resources" not in rule:
        return True
    wanted = f"{resource}/{sub}" if sub else resource
    for entry in rule["resources"]:
        if entry.get("group", "") not in (group, "*"):
            continue
        names = entry.get("resources", ["*"])
        if wanted in names or "*" in names or (sub and f"{resource}/*" in names):
            return True
    return False


def _level(user: str, verb: str, group: str, resource: str, sub: str = "") -> str:
    """First matching rule's level; no match means None (the API server's default)."""
    for rule in _policy()["rules"]:
        if "users" in rule and user not in rule["users"]:
            continue
        if "verbs" in rule and verb not in rule["verbs"]:
            continue
        if _matches_resource(rule, group, resource, sub):
            return str(rule["level"])
    return "None"


SA = "system:serviceaccount:shop:web"


@pytest.mark.parametrize(
    ("verb", "group", "resource", "sub"),
    [
        ("get", "", "secrets", ""),
        ("list", "", "secrets", ""),
        ("create", "", "secrets", ""),
        ("update", "", "configmaps", ""),
        ("create", "", "configmaps", ""),
        ("create", "authentication.k8s.io", "tokenreviews", ""),
        ("create", "", "serviceaccounts", "token"),
        ("create", "authorization.k8s.io", "subjectaccessreviews", ""),
    ],
)
def test_credentials_never_logged_with_bodies(
    verb: str, group: str, resource: str, sub: str
) -> None:
    assert _level(SA, verb, group, resource, sub) == "Metadata"


@pytest.mark.parametrize("sub", ["exec", "attach"])
@pytest.mark.parametrize("verb", ["create", "get"])
def test_exec_and_attach_are_logged(verb: str, sub: str) -> None:
    assert _level(SA, verb, "", "pods", sub) == "Metadata"


@pytest.mark.parametrize(
    ("group", "resource"),
    [
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    ],
)
def test_workload_creation_has_response_bodies(group: str, resource: str) -> None:
    assert _level(SA, "create", group, resource) == "RequestResponse"


@pytest.mark.parametrize(
    ("verb", "group", "resource"),
    [
        ("list", "", "pods"),
        ("get", "", "pods"),
        ("delete", "apps", "deployments"),
        ("list", "", "namespaces"),
    ],
)
def test_other_requests_get_metadata(verb: str, group: str, resource: str) -> None:
    assert _level(SA, verb, group, resource) == "Metadata"


def test_no_rule_logs_bodies_of_anything_else() -> None:
    for rule in _policy()["rules"]:
        if rule["level"] in ("Request", "RequestResponse"):
            assert rule.get("verbs") == ["create"]
            names = {r for g in rule["resources"] for r in g["resources"]}
            assert names.isdisjoint(
                {"secrets", "configmaps", "tokenreviews", "serviceaccounts/token"}
            )


def test_webhook_kubeconfig_shape() -> None:
    config = yaml.safe_load((API_SERVER / "audit-webhook-kubeconfig.yaml").read_text())
    assert (config["apiVersion"], config["kind"]) == ("v1", "Config")
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    users = {u["name"]: u["user"] for u in config["users"]}
    contexts = {c["name"]: c["context"] for c in config["contexts"]}
    current = contexts[config["current-context"]]
    cluster, user = clusters[current["cluster"]], users[current["user"]]
    assert cluster["server"].startswith("https://")
    assert cluster["server"].endswith("/k8s-audit")
    assert cluster["certificate-authority"].startswith("/")
    assert "insecure-skip-tls-verify" not in cluster
    # The token lives in a file on the node, never inline in this file.
    assert set(user) == {"tokenFile"}


def test_apiserver_flags_name_the_shipped_files() -> None:
    flags = dict(
        line.split("=", 1) for line in (API_SERVER / "kube-apiserver-flags.txt").read_text().split()
    )
    assert Path(flags["--audit-policy-file"]).name == "audit-policy.yaml"
    assert Path(flags["--audit-webhook-config-file"]).name == "audit-webhook-kubeconfig.yaml"
    assert flags["--audit-webhook-mode"] == "batch"
