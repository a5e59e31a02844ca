"""``Resolver.claim_matters`` answers what its two questions answer, on any bindings.

The engine decides a claim (``Engine.claimed``) with one call instead of
``audit_teaches(...) or (foreign and foreign_ip(...))``; a wrong answer would build the
wrong claims and change chains, so the one call is compared with the two on random
bindings learned from Falco alerts and pod-token requests, at random times.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from correlation.event import Event
from correlation.identity import Resolver
from correlation.testing import audit_event, falco_event

PODS = [f"p{i}" for i in range(4)]
IPS = [f"10.0.0.{i}" for i in range(5)]


def _teacher(kind: int, pod: str, ip: str, second: int) -> Event:
    if kind == 0:  # a Falco alert announcing the pod's address
        return falco_event("x", second, pod=pod, namespace="default", ips=(ip,))
    return audit_event("get", "pods", second, sa="default:x", pod=pod, ips=(ip,))


teachers = st.lists(
    st.tuples(st.integers(0, 1), st.sampled_from(PODS), st.sampled_from(IPS), st.integers(0, 100)),
    max_size=12,
)
questions = st.lists(
    st.tuples(st.sampled_from(PODS), st.sampled_from(IPS), st.integers(0, 100), st.booleans()),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(teachers, questions, st.sampled_from([3, 100]))
def test_claim_matters_is_teaches_or_foreign(
    taught: list[tuple[int, str, str, int]],
    asked: list[tuple[str, str, int, bool]],
    max_bindings: int,
) -> None:
    resolver = Resolver(max_bindings=max_bindings, hold_ns=60_000_000_000)
    for kind, pod, ip, second in taught:
        resolver.learn(resolver.resolve(_teacher(kind, pod, ip, second)))
    for pod, ip, second, foreign in asked:
        event = audit_event("get", "pods", second, sa="default:x", pod=pod, ips=(ip,))
        pod_ref, time_ns = event.actor.pod_ref, event.time_ns
        two = resolver.audit_teaches(pod_ref, ip, time_ns) or (
            foreign and resolver.foreign_ip(pod_ref, ip, time_ns)
        )
        assert resolver.claim_matters(pod_ref, ip, time_ns, foreign) == two
