"""Pod-token requests passed to the engine as claims decide the same as normalized ones.

The early reject passes a request made with a pod's token, that only foreign-source-IP
steps may want, as a :class:`~correlation.event.Claim`; :meth:`Engine.claimed` builds
the Event only when the resolver learns from it or its IP is foreign at that moment. An
engine fed the claims must end where an engine fed the normalized events ends: the same
chains byte for byte, the same counters (``time_only`` aside: a claim that changed
nothing is counted there), the same events handed to ``on_late``, the same snapshot.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from correlation import snapshots
from correlation.allowlist import Allowlist
from correlation.chain import to_record
from correlation.engine import Engine, EngineConfig
from correlation.event import Claim, Event
from correlation.interest import Interest
from correlation.rules import ChainRule, builtin_rules_paths, load_rules
from correlation.testing import SECOND, falco_event
from detector.parse import parse_line
from detector.parse.early import EarlyReject
from detector.parse.long_running import LongRunningStages
from synthetic import audit, jsonl

T = 1_772_445_600 * SECOND
NAMESPACE = "shop"
PODS = ("api", "cart", "pay")
IPS = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
# (verb, resource, namespace): the first two only a foreign-IP step may want (claims);
# listing pods cluster-wide is cross-namespace API abuse (always normalized)
REQUESTS = (("get", "configmaps", NAMESPACE), ("get", "secrets", NAMESPACE),
            ("list", "pods", ""), ("watch", "configmaps", NAMESPACE))  # fmt: skip
WATCH = 3  # long-running: its stages fold into one event (long_running.py)
STAGES = ("ResponseComplete", "ResponseStarted", "RequestReceived")
GET_PODS = """
rules:
  - id: pod-reads-pods
    severity: low
    within: 60s
    steps:
      - {name: scan, where: {rule: Scan}, by: actor.pod}
      - name: get
        where: {all: [{source: k8s_audit}, {verb: get}, {resource: configmaps},
                      {actor.pod: {exists: true}}]}
        by: actor.pod
"""


@cache
def _builtin() -> list[ChainRule]:
    return load_rules(builtin_rules_paths())


def request(
    time_ns: int,
    pod: str,
    ip: str,
    kind: int = 0,
    number: int = 0,
    ips: list[str] | None = None,
    stage: str = "ResponseComplete",
) -> bytes:
    """One audit line: pod ``pod`` of namespace shop calling the API with its own token."""
    verb, resource, namespace = REQUESTS[kind]
    account = f"{pod}-sa"
    user = audit.pod_token_user(
        namespace=NAMESPACE, account=account, uid="u", credential_id="JTI=1", node="n1",
        node_uid="n1-uid", pod=pod, pod_uid=f"{pod}-uid",
    )  # fmt: skip
    doc = audit.event(
        time_ns=time_ns, stage_ns=time_ns + 1000, audit_id=f"req-{number}",
        stage=stage, level="Metadata", uri=audit.request_path(resource, namespace),
        verb=verb, user=user, source_ips=[ip] if ips is None else ips, user_agent="app",
        object_ref=audit.object_ref(resource, namespace), status=audit.response_status(200),
        annotations=audit.authorization(True, "reader"),
    )  # fmt: skip
    return jsonl.line(doc)


def token_read(time_ns: int, pod: str, ip: str) -> Event:
    """Falco sees ``pod`` (at ``ip``) read its token: binds the IP, opens stolen-token-replay."""
    event = falco_event("LMD Service Account Token Read", pod=pod, namespace=NAMESPACE,
                        ips=(ip,), tags=("T1528",), id=f"read-{time_ns}-{pod}-{ip}")  # fmt: skip
    return msgspec.structs.replace(event, time_ns=time_ns)


class Outcome:
    """Everything observable of one engine run."""

    def __init__(self, rules: list[ChainRule], config: EngineConfig) -> None:
        self.stages = LongRunningStages(max_open=2)  # small: forgetting is exercised too
        self.late: list[Event] = []
        self.engine = Engine(rules, config, on_late=self.late.append)
        self.chains: list[bytes] = []

    def add(self, found: list[Any]) -> None:
        self.chains += [orjson.dumps(to_record(chain)) for chain in found]

    def feed(self, item: Event | Claim) -> None:
        at = 0  # as replay and the correlator take their runs of events
        while at < 1:
            at, found = self.stages.run(self.engine, [item], at)
            self.add(found)

    def seen(self) -> tuple[Any, ...]:
        stats = msgspec.structs.replace(self.engine.stats(), time_only=0)
        snap = snapshots.decode(self.engine.snapshot())
        snap = msgspec.structs.replace(snap, stats=msgspec.structs.replace(snap.stats, time_only=0))
        self.add(self.engine.flush())
        folds = (self.stages.folded, self.stages.forgotten, self.stages.snapshot())
        return self.chains, stats, self.late, snap, folds


def run_both(
    items: list[bytes | Event], rules: list[ChainRule], config: EngineConfig
) -> tuple[tuple[Any, ...], tuple[Any, ...], int]:
    """The outcome fed normalized events, the one fed claims, and how many claims."""
    early = EarlyReject(Interest(rules, config.allowlist))
    plain, claimed = Outcome(rules, config), Outcome(rules, config)
    for item in items:
        if isinstance(item, Event):
            plain.feed(item)
            claimed.feed(item)
            continue
        for event in parse_line(item):
            plain.feed(event)
        for carried in parse_line(item, None, early.claiming):
            claimed.feed(carried)
    return plain.seen(), claimed.seen(), early.claims


step = st.tuples(
    st.sampled_from(("falco", "request", "request", "request")),
    st.integers(0, len(PODS) - 1),
    st.integers(0, len(IPS) - 1),
    st.integers(0, len(REQUESTS) - 1),
    st.integers(0, 4_000),  # ms since the step before
    st.booleans(),  # late: 3 s before the time so far (lateness 1 s)
    st.integers(0, 5),  # the request's auditID: stages of one watch share it
    st.sampled_from(STAGES),  # a watch's stage (other requests: ResponseComplete)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=40), st.sampled_from((2, 3, 100)))
def test_claims_decide_as_normalized_events(steps: list[Any], max_identities: int) -> None:
    rules = _builtin()
    config = EngineConfig(lateness_ns=SECOND, max_identities=max_identities)
    items: list[bytes | Event] = []
    now = T
    for number, (kind, pod, ip, what, gap_ms, late, request_id, stage) in enumerate(steps):
        now += gap_ms * 1_000_000
        at = now - 3 * SECOND if late else now
        if kind == "falco":
            items.append(token_read(at, PODS[pod], IPS[ip]))
        elif what == WATCH:  # the stages of one watch share its auditID
            items.append(request(at, PODS[pod], IPS[ip], what, request_id, stage=stage))
        else:
            items.append(request(at, PODS[pod], IPS[ip], what, number))
    plain, claimed, _ = run_both(items, rules, config)
    assert claimed == plain


def test_a_replayed_token_from_a_foreign_ip_is_found_through_a_claim() -> None:
    # cart's token read at 10.0.0.2, then cart's token used from pay's address
    items: list[bytes | Event] = [
        token_read(T, "cart", "10.0.0.2"),
        token_read(T + SECOND, "pay", "10.0.0.3"),
        request(T + 2 * SECOND, "cart", "10.0.0.2", number=1),  # its own address: nothing
        request(T + 3 * SECOND, "cart", "10.0.0.3", number=2),  # pay's: replayed
        request(T + 4 * SECOND, "api", "10.0.0.4", number=3),  # unbound pod: learned
    ]
    plain, claimed, claims = run_both(items, _builtin(), EngineConfig())
    assert claimed == plain and claims == 3
    chains = [orjson.loads(c) for c in claimed[0]]
    assert [c["rule"] for c in chains] == ["stolen-token-replay"]
    assert claimed[3].identity.ips["10.0.0.4"] == [(T + 4 * SECOND, "shop/api")]


def test_the_claims_ip_is_the_one_normalization_puts_first() -> None:
    # a proxy chain: the API server's own view is the last entry
    line = request(T, "cart", "", ips=["", "192.168.1.9", "10.0.0.7"])
    (claim,) = parse_line(line, None, EarlyReject(Interest(_builtin())).claiming)
    (event,) = parse_line(line)
    assert isinstance(claim, Claim)
    assert (claim.time_ns, claim.pod_ref, claim.ip) == (
        event.time_ns, event.actor.pod_ref, event.actor.ips[0],
    )  # fmt: skip
    assert claim.event() == event


def test_a_rule_that_wants_a_pods_get_makes_it_an_event_again(tmp_path: Path) -> None:
    line = request(T, "cart", "10.0.0.2")
    assert isinstance(parse_line(line, None, EarlyReject(Interest(_builtin())).claiming)[0], Claim)
    extra = tmp_path / "get.yaml"
    extra.write_text(GET_PODS)
    early = EarlyReject(Interest([*_builtin(), *load_rules([extra])]))
    assert parse_line(line, None, early.claiming) == parse_line(line) and early.claims == 0


def test_a_request_of_another_namespace_or_an_allowlisted_pod_is_normalized() -> None:
    cross = request(T, "cart", "10.0.0.2", kind=2)  # list pods cluster-wide: API abuse
    early = EarlyReject(Interest(_builtin()))
    assert parse_line(cross, None, early.claiming) == parse_line(cross)
    own = request(T, "cart", "10.0.0.2")
    listed = EarlyReject(Interest(_builtin(), Allowlist(pods=("shop/cart",))))
    assert parse_line(own, None, listed.claiming) == parse_line(own)  # counted suppressed
    assert early.claims == listed.claims == 0


def test_without_claiming_every_pod_token_request_is_normalized() -> None:
    line = request(T, "cart", "10.0.0.2")
    early = EarlyReject(Interest(_builtin()))
    assert parse_line(line, None, early) == parse_line(line) and early.claims == 0


def test_a_watchs_stages_fold_as_its_events_do() -> None:
    # started and complete: one event; both claims fold the same way, the claim carrying
    # the id its Event would have
    started = request(T, "cart", "10.0.0.2", WATCH, 7, stage="ResponseStarted")
    complete = request(T, "cart", "10.0.0.2", WATCH, 7, stage="ResponseComplete")
    early = EarlyReject(Interest(_builtin()))
    claims = [c for line in (started, complete) for c in parse_line(line, None, early.claiming)]
    events = [e for line in (started, complete) for e in parse_line(line)]
    assert all(isinstance(c, Claim) for c in claims)
    assert [c.fold for c in claims if isinstance(c, Claim)] == [e.id for e in events]
    stages = LongRunningStages()
    assert [stages.admit_claim(c) for c in claims if isinstance(c, Claim)] == [True, False]
