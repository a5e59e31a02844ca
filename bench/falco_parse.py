"""``python -m bench falco-parse``: CPU ns per Falco alert body, early reject or not.

Each case decodes and parses one alert body ``NUMBER`` times through
:func:`detector.parse.bodies.falco_body` (one msgspec pass into ``FalcoAlert``, then
``normalize_falco`` or ``EarlyReject.falco``), as ``POST /falco``, the file tailer and
replay do per alert; CPU ns per alert, best of ``REPEAT`` rounds (the machine is shared:
the minimum is the least disturbed round). The early reject's memo is warm, as it is
after the first few alerts of a stream.

Cases (alerts in the benchmark generator's shapes):

* a pod's alert (``k8s.*``, ``container.*``): never rejected, it has an actor;
* a host alert (no pod, no container) under the built-in rules: a time-only tick (every
  built-in step joins on the actor's pod, which such an alert cannot have);
* the same host alert under the built-in rules plus one joining ``Clear Log Activities``
  on the node: still wanted, so normalized (the decision's cost on top of normalizing).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

import orjson

NUMBER: Final = 20_000
REPEAT: Final = 5
T: Final = 1_772_445_600 * 1_000_000_000
_PROCESS: Final = {"proc.name": "rm", "proc.cmdline": "rm -rf /var/log/app/access.log",
                   "proc.pname": "sh", "user.name": "root", "evt.type": "unlinkat"}  # fmt: skip
_BY_NODE: Final = """
rules:
  - id: log-clearing-on-a-node
    severity: low
    within: 60s
    steps:
      - {name: cleared, where: {rule: Clear Log Activities}, by: actor.node}
"""
_POD: Final = {"container.id": "3f2a9c1b7d4e", "container.name": "web",
               "container.image.repository": "registry.example/shop/web",
               "k8s.ns.name": "shop", "k8s.pod.name": "web-7d9f8-abcde",
               "container.ip": "10.244.1.17"}  # fmt: skip


def _body(fields: dict[str, Any]) -> bytes:
    from synthetic import falco

    tags = ("maturity_stable", "host", "container", "filesystem", "mitre_defense_evasion", "T1070")
    doc = falco.alert(T, "Clear Log Activities", "Warning", tags, "Log files were tampered",
                      "node-1", fields)  # fmt: skip
    return orjson.dumps(doc)


def _cost(parse: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.process_time()
        for _ in range(NUMBER):
            parse()
        best = min(best, time.process_time() - start)
    return best / NUMBER * 1e9


def cases() -> dict[str, tuple[bytes, Any, bool]]:
    """name → (alert body, early reject or None, whether it must come back a tick)."""
    from correlation.interest import Interest
    from correlation.rules import builtin_rules_paths, load_rules
    from detector.parse.early import EarlyReject

    rules = load_rules(builtin_rules_paths())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "node.yaml"
        path.write_text(_BY_NODE)
        by_node = EarlyReject(Interest([*rules, *load_rules([path])]))
    builtin = EarlyReject(Interest(rules))
    pod, host = _body({**_PROCESS, **_POD}), _body({**_PROCESS, "container.id": "host"})
    return {
        "pod alert, no early reject": (pod, None, False),
        "pod alert, early reject (built-in rules)": (pod, builtin, False),
        "host alert, no early reject": (host, None, False),
        "host alert, early reject (built-in rules: tick)": (host, builtin, True),
        "host alert, early reject (a step wants it: kept)": (host, by_node, False),
    }


def table() -> str:
    from detector.parse.bodies import falco_body

    lines = ["| alert, parse path | CPU ns per alert |", "|---|---|"]
    for name, (body, early, tick) in cases().items():
        event = falco_body(body, early)  # warms the memo; checks the case is what it says
        assert (event.id == "") == tick, name
        cost = _cost(partial(falco_body, body, early))
        lines.append(f"| {name} | {cost:,.0f} |")
    return "\n".join(lines)
