"""``describe``: audit summaries built on demand, Falco summaries passed through."""

from __future__ import annotations

from correlation.chain import Chain, ChainStep, to_record
from correlation.event import FALCO, K8S_AUDIT, Event, Identity, describe
from correlation.rules.fields import getter


def _audit(**kw: object) -> Event:
    base: dict[str, object] = {
        "time_ns": 1,
        "source": K8S_AUDIT,
        "id": "a/ResponseComplete",
        "verb": "list",
        "resource": "secrets",
        "response_code": 403,
        "actor": Identity(user="system:serviceaccount:shop:web"),
        "target": Identity(namespace="payments"),
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def test_audit_summary_from_fields() -> None:
    assert describe(_audit()) == "system:serviceaccount:shop:web list secrets payments -> 403"


def test_subresource_and_pod_name() -> None:
    event = _audit(
        verb="create",
        resource="pods",
        subresource="exec",
        name="db-0",
        response_code=101,
        target=Identity(namespace="data", pod="db-0"),
    )
    assert describe(event).endswith("create pods/exec data/db-0 -> 101")


def test_non_resource_url_and_anonymous() -> None:
    event = _audit(
        verb="get",
        resource="",
        response_code=200,
        actor=Identity(),
        target=Identity(),
        fields={"request_uri": "/healthz"},
    )
    assert describe(event) == "anonymous get /healthz -> 200"


def test_long_summary_is_cut() -> None:
    text = describe(_audit(name="x" * 3000, target=Identity(namespace="n")))
    assert len(text) == 1024
    assert text.endswith("…")


def test_explicit_summary_wins_and_falco_passes_through() -> None:
    assert describe(_audit(summary="given")) == "given"
    falco = Event(time_ns=1, source=FALCO, id="f", summary="nmap in shop/web")
    assert describe(falco) == "nmap in shop/web"


def test_chain_record_and_rule_field_use_it() -> None:
    event = _audit()
    chain = Chain("c", "i", "r", "t", "high", (), (ChainStep("s", event),), {})
    assert to_record(chain)["steps"][0]["summary"] == describe(event)
    assert getter("summary")(event) == describe(event)
