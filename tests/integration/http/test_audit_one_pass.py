"""An audit webhook body decoded in one pass makes what the item-by-item path makes.

The receiver (:class:`K8sAuditReceiver`, with the built-in rules' early reject) decodes a
body whose items surely fit in one pass into the structs, and a claim then keeps the
struct instead of the item's JSON; any other body goes item by item. Both must give the
same ticks, Events and claims (a claim's Event built from either), the same refusals and
the same counts. The bodies are the benchmark's cluster noise (kubelets, controllers,
pods with bound tokens, long-running watches and execs) plus the attack's audit events.
"""

from __future__ import annotations

from typing import Any

import orjson

from bench.live_intake import noise_docs
from correlation.event import Claim
from detector.commands.run import early_reject
from detector.parse.audit import AuditEvent
from detector.parse.bodies import MIN_EVENT_BYTES, decoded_items
from detector.sources.k8s_audit import K8sAuditReceiver
from tests.integration.run import scenario
from tests.integration.support import comparable, shipped_engine


def body(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(scenario.event_list() | {"items": items})


def noise_and_attack() -> list[dict[str, Any]]:
    scenario.rebase()
    return noise_docs(600, seed=3) + scenario.audit_items()


async def test_one_pass_and_item_by_item_make_the_same_events() -> None:
    data = body(noise_and_attack())
    receiver = K8sAuditReceiver(1 << 22, early_reject(shipped_engine()))
    ample = len(data) // MIN_EVENT_BYTES  # room for the smallest possible events
    one_pass = await receiver.decode(data, ample, ample)
    by_item = await receiver.decode(data, ample, ample - 1)  # might not fit: counted first
    claims = [e for e in one_pass.events if isinstance(e, Claim)]
    assert claims and all(isinstance(c.doc, AuditEvent) for c in claims)
    assert all(not isinstance(e.doc, AuditEvent) for e in by_item.events if isinstance(e, Claim))
    assert [comparable(e) for e in one_pass.events] == [comparable(e) for e in by_item.events]
    assert one_pass.rejected == by_item.rejected == {}


async def test_a_bad_item_fails_the_one_pass_and_is_counted_alone() -> None:
    items = noise_and_attack()
    items[5] = items[5] | {"verb": 5}  # a number where a string belongs
    data = body(items)
    assert decoded_items(data) is None
    receiver = K8sAuditReceiver(1 << 22, early_reject(shipped_engine()))
    decoded = await receiver.decode(data, 100_000, 100_000)
    assert decoded.rejected == {"bad_type": 1}
    good = await receiver.decode(body(items[:5] + items[6:]), 100_000, 100_000)
    assert [comparable(e) for e in decoded.events] == [comparable(e) for e in good.events]
