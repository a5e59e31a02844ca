"""Which signal takes each upstream Falco rule: every rule of falcosecurity/rules (stable,
incubating, sandbox; tests/data/falco/upstream-rules-coverage.tsv, columns maturity, rule,
enabled, tags), alerted with its real name and tags, checked against every Falco-side signal
of correlation/rules/signals.yaml.

The expected table below is the decision, rule by rule: a rule whose behaviour belongs to a
chain step is taken by that step's signal; every other rule by none, or only by the broad
tag-based ``credential-access`` / ``discovery`` signals of ``imds-credential-theft``'s second
step. A new signal entry that sweeps in an unrelated upstream rule fails here.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from correlation.event import FALCO, Event, Identity
from correlation.rules import ChainRule, builtin_rules_paths, load_rules

TABLE = Path(__file__).resolve().parents[2] / "data" / "falco" / "upstream-rules-coverage.tsv"
SIGNALS = (
    "network-tool", "recon", "token-read", "imds", "shell", "credential-access", "discovery",
    "internal-connection",
)  # fmt: skip
POD = Identity(namespace="shop", pod="web-6c9f7d8b5-x2x7k", container_id="3ad7b26ded6d")
INTERNAL = Identity(ips=("10.244.2.9",), port=443)  # what a network alert's server parses to

# (rule) -> the signals that take it; rules not listed are taken by none
NETWORK_TOOL = {"network-tool", "recon", "discovery"}
SHELL = {"shell"}
CREDENTIALS = {"credential-access"}
EXPECTED: dict[str, set[str]] = {
    # shells in a pod: exec-pivot / workload-pivot activity
    "Run shell untrusted": SHELL,
    "Terminal shell in container": SHELL,
    "System user interactive": SHELL,
    "Redirect STDOUT/STDIN to Network Connection in Container": SHELL,
    "Web Server Spawned Shell": SHELL,
    "Reverse Shell from Web Server": SHELL,
    "Netcat Remote Code Execution in Container": NETWORK_TOOL | SHELL,
    # network tools in a pod: recon, activity steps, imds' discovery step
    "Launch Suspicious Network Tool in Container": NETWORK_TOOL,
    "Launch Remote File Copy Tools in Container": NETWORK_TOOL,
    "Launch Ingress Remote File Copy Tools in Container": NETWORK_TOOL,
    "Kubernetes Client Tool Launched in Container": NETWORK_TOOL,
    "Web Server Spawned Suspicious Child Process": NETWORK_TOOL,
    "Network Tool Executed During NPM Package Install": NETWORK_TOOL,
    "Disallowed SSH Connection Non Standard Port": NETWORK_TOOL,
    # recon by connection or socket
    "Contact K8S API Server From Container": {"recon", "discovery"},
    "Packet socket created in container": {"recon", "discovery", "credential-access"},
    "Network Connection outside Local Subnet": {"recon", "discovery", "internal-connection"},
    "Unexpected K8s NodePort Connection": {"internal-connection"},
    "Basic Interactive Reconnaissance": {"recon", "discovery"},
    # metadata service
    "Contact EC2 Instance Metadata Service From Container": {"imds", "credential-access"},
    "Contact cloud metadata service from container": {"imds", "discovery"},
    # credentials: imds-credential-theft's second step
    "Find AWS Credentials": CREDENTIALS,
    "Search Private Keys or Passwords": CREDENTIALS,
    "Read environment variable from /proc files": {"credential-access", "discovery"},
    "Read ssh information": CREDENTIALS,
    # broad tags only (mitre_credential_access, mitre_discovery): evidence for the second
    # step of imds-credential-theft, nothing else
    "Directory traversal monitored file read": CREDENTIALS,
    "Read sensitive file trusted after startup": CREDENTIALS,
    "Read sensitive file untrusted": CREDENTIALS,
    "Create Symlink Over Sensitive Files": CREDENTIALS,
    "Create Hardlink Over Sensitive Files": CREDENTIALS,
    "Read Shell Configuration File": {"discovery"},
}


@cache
def rows() -> tuple[tuple[str, tuple[str, ...]], ...]:
    with TABLE.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return tuple((row["rule"], tuple(row["tags"].split(","))) for row in reader)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ChainRule:
    """One chain rule with a step per Falco-side signal: its matching steps name the signals."""
    steps = "".join(
        f"      - {{name: {name}, where: {{signal: {name}}}, by: actor.pod}}\n" for name in SIGNALS
    )
    path = tmp_path_factory.mktemp("probe") / "probe.yaml"
    path.write_text(
        "rules:\n  - id: signal-probe\n    title: probe\n    description: probe\n"
        f"    severity: low\n    techniques: [T1046]\n    within: 1m\n    steps:\n{steps}",
        encoding="utf-8",
    )
    rules = load_rules([*builtin_rules_paths(), path])
    return next(rule for rule in rules if rule.id == "signal-probe")


def taken_by(probe: ChainRule, rule: str, tags: tuple[str, ...]) -> set[str]:
    event = Event(
        time_ns=1_767_225_600_000_000_000,
        source=FALCO,
        id=f"falco-{rule}",
        rule=rule,
        priority="warning",
        tags=tuple(sorted(tags)),
        actor=POD,
        target=INTERNAL if "network" in tags else Identity(),
    )
    return set(probe.matching_steps(event))


def test_table_is_the_current_upstream_set() -> None:
    assert len(rows()) == 93
    assert set(EXPECTED) <= {rule for rule, _ in rows()}
    assert all(any(t.startswith("maturity_") for t in tags) for _, tags in rows())


@pytest.mark.parametrize(("rule", "tags"), rows(), ids=[rule for rule, _ in rows()])
def test_signals_that_take_each_upstream_rule(
    probe: ChainRule, rule: str, tags: tuple[str, ...]
) -> None:
    assert taken_by(probe, rule, tags) == EXPECTED.get(rule, set())


SEVEN = (
    "System user interactive",
    "Read ssh information",
    "Web Server Spawned Shell",
    "Reverse Shell from Web Server",
    "Web Server Spawned Suspicious Child Process",
    "Network Tool Executed During NPM Package Install",
    "Disallowed SSH Connection Non Standard Port",
)
# the four others carry only T1059 / mitre_execution, shared with drift and /dev/shm rules
DISTINCT_TAG = {
    "Read ssh information": "T1005",
    "Web Server Spawned Shell": "T1505.003",
    "Network Tool Executed During NPM Package Install": "T1195.002",
}


@pytest.mark.parametrize("rule", SEVEN)
def test_the_seven_are_recognised_by_name_alone(probe: ChainRule, rule: str) -> None:
    # Falco can be told to leave tags out of alerts; the name must be enough.
    assert taken_by(probe, rule, ()) == EXPECTED[rule]


@pytest.mark.parametrize(("rule", "tag"), sorted(DISTINCT_TAG.items()))
def test_renamed_copies_are_recognised_by_their_technique_tag(
    probe: ChainRule, rule: str, tag: str
) -> None:
    tags = dict(rows())[rule]
    assert tag in tags
    assert taken_by(probe, "My copy of " + rule, tags) == EXPECTED[rule]


def test_no_upstream_rule_carries_t1528(probe: ChainRule) -> None:
    # Only this project's token-read rule meets the token-read step (docs/chain-rules.md).
    assert not any("T1528" in tags for _, tags in rows())
    assert not any("token-read" in taken_by(probe, rule, tags) for rule, tags in rows())
