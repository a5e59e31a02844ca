"""Interest: what the loaded rules can use of an event, answered before normalization.

Every answer is checked against the engine's own index on the normalized event, and
the answers follow the rules: a rule that starts wanting an event makes it wanted.
"""

from __future__ import annotations

import random
from pathlib import Path

from correlation.allowlist import Allowlist
from correlation.event import Event
from correlation.identity import Resolver
from correlation.index import StepIndex
from correlation.interest import BY_IP, Interest
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from correlation.testing import audit_event, falco_event

LEASES = """
rules:
  - id: lease-grab
    severity: low
    within: 60s
    steps:
      - {name: lease, where: {all: [{resource: leases}, {verb: update}]}, by: actor.user}
"""
POD_USER = """
rules:
  - id: pod-anything
    severity: low
    within: 60s
    steps:
      - {name: any, where: {all: [{source: k8s_audit}, {actor.pod: {exists: true}}]}, by: actor.pod}
"""


def _builtin() -> list[ChainRule]:
    return load_rules(builtin_rules_paths())


def _wants(interest: Interest, event: Event, resolve_by: str = BY_IP) -> bool:
    parts = {"actor.pod": event.actor.pod, "actor.service_account": event.actor.service_account,
             "actor.namespace": event.actor.namespace, "actor.user": event.actor.user}  # fmt: skip
    empty = tuple(name in parts and not parts[name] for name in interest.asks)
    return interest.wants(
        event.source, event.rule, event.tags, event.verb, event.resource, event.subresource,
        empty, resolve_by,
    )  # fmt: skip


def test_noise_no_builtin_step_wants_is_not_wanted() -> None:
    interest = Interest(_builtin())
    kubelet = audit_event("update", "leases", sa="", user="system:node:n1", ips=("10.0.0.1",))
    person = audit_event("list", "pods", sa="", user="alice@example.com")
    controller = audit_event("update", "endpointslices", sa="kube-system:x", pod="")
    assert not any(_wants(interest, e) for e in (kubelet, person, controller))


def test_what_builtin_steps_want_is_wanted() -> None:
    interest = Interest(_builtin())
    exec_in = audit_event("create", "pods", sa="", user="alice", subresource="exec")
    secrets = audit_event("list", "secrets", sa="shop:web", pod="", namespace="payments")
    scan = falco_event("LMD Network Scanner Launched in Pod", tags=("T1046",))
    assert all(_wants(interest, e) for e in (exec_in, secrets, scan))


def test_a_new_rule_that_wants_an_event_makes_it_wanted(tmp_path: Path) -> None:
    kubelet = audit_event("update", "leases", sa="", user="system:node:n1")
    assert not _wants(Interest(_builtin()), kubelet)
    extra = tmp_path / "leases.yaml"
    extra.write_text(LEASES)
    assert _wants(Interest([*_builtin(), *load_rules([extra])]), kubelet)


def test_a_pod_the_resolver_may_find_counts_except_for_foreign_ip_steps(tmp_path: Path) -> None:
    # no pod claim: the resolver may still find the pod from the source IP
    controller = audit_event("update", "endpointslices", sa="kube-system:x", pod="")
    # built in: only stolen-token-replay wants any SA request with a pod, and it needs a
    # *foreign* source IP, which a pod found from that very IP never is
    assert not _wants(Interest(_builtin()), controller, BY_IP)
    extra = tmp_path / "pod.yaml"
    extra.write_text(POD_USER)
    interest = Interest(load_rules([extra]))
    assert _wants(interest, controller, BY_IP)
    assert not _wants(interest, controller, "")  # no IP, no claim: it never gets a pod


def test_answers_agree_with_the_engine_index_on_normalized_events() -> None:
    rules = _builtin()
    interest, index = Interest(rules), StepIndex(rules)
    rng = random.Random(5)
    verbs = ("get", "list", "create", "update", "patch", "watch", "delete")
    resources = ("pods", "secrets", "leases", "nodes", "jobs", "configmaps", "events", "")
    for _ in range(2000):
        sa = rng.choice(("", "shop:web", "kube-system:job-controller"))
        event = audit_event(
            rng.choice(verbs), rng.choice(resources), sa=sa, pod=rng.choice(("", "web-1")),
            subresource=rng.choice(("", "exec", "status", "token")), namespace="payments",
            ips=rng.choice(((), ("10.0.0.5",))),
        )  # fmt: skip
        # the engine may keep it (a step matched and offers it a key, or the rule counts
        # it as suppressed): then the early reject must not drop it
        if any(_keyable(rules, ref, event) for ref in index.candidates(event)):
            assert _wants(interest, event, BY_IP if event.actor.ips else ""), event


def _keyable(rules: list[ChainRule], ref: tuple[int, int], event: Event) -> bool:
    """Whether step ``ref`` could keep ``event``: its rule has a suppress list, the
    resolver may still give it a pod (it has an address), or it offers every join key."""
    rule, step = rules[ref[0]], rules[ref[0]].steps[ref[1]]
    return bool(rule.suppress) or bool(event.actor.ips) or all(fn(event) for fn in step.keys)


def test_allowlisted_follows_the_allowlist() -> None:
    rules = _builtin()
    allow = Allowlist(namespaces=("kube-system",), service_accounts=("ci:*",))
    assert Interest(rules, allow).allowlisted(namespace="kube-system")
    assert Interest(rules, allow).allowlisted(service_account="ci:deployer")
    assert not Interest(rules, allow).allowlisted(namespace="shop", service_account="shop:web")
    assert not Interest(rules).allowlisted(namespace="kube-system")


def test_audit_requests_without_a_pod_claim_teach_the_resolver_nothing() -> None:
    # the early reject passes such requests on as ticks: learn() must never need them
    rng = random.Random(11)
    resolver = Resolver(max_bindings=1000, hold_ns=60_000_000_000)
    for i in range(3000):
        ip = f"10.0.0.{rng.randrange(20)}"
        if rng.random() < 0.3:  # pods that announce their IPs (Falco) or claim (audit)
            pod = f"p{rng.randrange(10)}"
            teacher = falco_event("x", i, pod=pod, ips=(ip,))
            resolver.learn(resolver.resolve(teacher))
            continue
        event = audit_event("get", "pods", i, sa="kube-system:x", pod="", ips=(ip,))
        before = repr(resolver.state)
        resolver.learn(resolver.resolve(event))
        assert repr(resolver.state) == before
    assert resolver.size  # the teachers did teach


def test_terms_keep_the_verb_a_resource_step_needs() -> None:
    interest = Interest(_builtin())
    # filed under resource=deployments by workload-pivot, but its predicate needs create
    patch = audit_event("patch", "deployments", sa="kube-system:deployment-controller", pod="")
    create = audit_event("create", "deployments", sa="ci:deployer", pod="", namespace="shop")
    assert not _wants(interest, patch) and _wants(interest, create)


def test_the_index_never_drops_a_step_whose_predicate_accepts() -> None:
    # soundness of alts, needs and terms: a step the index leaves out must reject the event
    rules = _builtin()
    index, resolver = StepIndex(rules), Resolver(100, 0)
    rng = random.Random(3)
    falco_rules = [
        "LMD Network Scanner Launched in Pod", "Terminal shell in container",
        "Find AWS Credentials", "LMD Service Account Token Read", "Clear Log Activities",
        "LMD Cloud Metadata Service Contacted", "LMD Tool Connected to Cluster Internal Address",
    ]  # fmt: skip
    accepted = 0
    for _ in range(3000):
        if rng.random() < 0.4:
            event = falco_event(
                rng.choice(falco_rules), tags=rng.sample(["T1046", "T1528", "T1552", "x"], 2),
                target_ips=rng.choice([(), ("169.254.169.254",), ("10.0.0.9",)]),
            )  # fmt: skip
        else:
            event = audit_event(
                rng.choice(("get", "list", "create", "patch", "watch")),
                rng.choice(("pods", "secrets", "jobs", "deployments", "serviceaccounts")),
                sa=rng.choice(("", "shop:web")), pod=rng.choice(("", "web-1")),
                subresource=rng.choice(("", "exec", "token")), code=rng.choice((200, 403)),
                namespace=rng.choice(("shop", "payments")),
            )  # fmt: skip
        candidates = set(index.candidates(event))
        for rule_no, rule in enumerate(rules):
            for step in rule.steps:
                if step.where.pred(event, resolver):
                    accepted += 1
                    assert (rule_no, step.index) in candidates, (rule.id, step.name, event)
    assert accepted > 300
