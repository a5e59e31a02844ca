"""Chains scored against the planted ground truth and against the eql peer."""

from __future__ import annotations

from typing import Any

from bench.eql_peer import QUERIES


def found(truth: dict[str, Any], chains: list[list[Any]]) -> bool:
    """A planted chain is found when a chain of its rule names its key pod."""
    return any(c[0] == truth["rule"] and truth["pod"] in c[1] for c in chains)


def score(truth: list[dict[str, Any]], chains: list[list[Any]]) -> dict[str, Any]:
    """Recall against the planted chains; chains that match no planted chain are false."""
    hit = [found(t, chains) for t in truth]
    false = [c for c in chains if not any(c[0] == t["rule"] and t["pod"] in c[1] for t in truth)]
    missed = [
        f"{t['rule']}:{t['pod']}:v{t['variant']}" for t, h in zip(truth, hit, strict=True) if not h
    ]
    return {"planted": len(truth), "found": sum(hit), "false": len(false), "missed": missed,
            "false_examples": false[:5]}  # fmt: skip


def agreement(
    truth: list[dict[str, Any]], ours: list[list[Any]], eql: list[list[Any]]
) -> list[str]:
    """Planted chains of the shared rules that one side finds and the other does not."""
    out = []
    for t in truth:
        if t["rule"] not in QUERIES:
            continue
        a, b = found(t, ours), found(t, eql)
        if a != b:
            out.append(f"{t['rule']} v{t['variant']} ({t['pod']}): ours={a} eql={b}")
    return out
