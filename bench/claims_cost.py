"""CPU cost of pod-token requests: normalized, or passed to the engine as claims.

    python -m bench.claims_cost [--stream FILE] [--events 50000] [--rounds 5]

A request made with a pod's bound token that only a foreign-source-IP step may want can
reach the engine as a :class:`~correlation.event.Claim` (``detector/parse/early.py``,
``Engine.claimed``) instead of a normalized Event. On one stream (``--stream``, e.g.
``bench/data/e200000-p1000-s7/stream-disordered.jsonl``; default: the generator's
ordered stream of ``--events`` events in a temporary directory), best of ``--rounds``
CPU times, both ways:

* *parse*: µs per line of the lines that carry a pod claim (``parse_line`` through the
  early reject, or through its ``claiming`` view);
* *engine*: the engine alone over the already parsed stream (s), and how many claims it
  had to build into Events;
* *both*: parse and engine over every line, a replay without its reader and reorder (s).

The chains of both ways are compared (ids, in order) before anything is timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.generate import STREAM, Params, generate

CLAIM_MARK = b"authentication.kubernetes.io/pod-name"


def _best(rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def _feed(rules: Sequence[Any], items: Sequence[Any]) -> tuple[list[str], int]:
    """The engine over ``items``; its chain ids and how many claims it built."""
    from correlation.engine import Engine
    from correlation.event import Claim

    engine, chains, built = Engine(rules), [], 0
    for item in items:
        if isinstance(item, Claim):
            before = engine.stats().time_only
            found = engine.claimed(item)
            built += engine.stats().time_only == before
        elif not item.id:
            found = engine.tick(item.time_ns, item.source)
        else:
            found = engine.process(item)
        chains += [c.id for c in found]
    return chains + [c.id for c in engine.flush()], built


def _engine_only(rules: Sequence[Any], items: Sequence[Any]) -> None:
    from correlation.engine import Engine
    from correlation.event import Claim

    engine = Engine(rules)
    claimed, tick, process = engine.claimed, engine.tick, engine.process
    for item in items:
        if isinstance(item, Claim):
            claimed(item)
        elif not item.id:
            tick(item.time_ns, item.source)
        else:
            process(item)


def _parse_all(lines: list[bytes], conv: Any) -> list[Any]:
    from detector.parse import parse_line

    return [item for line in lines for item in parse_line(line, None, conv)]


def _both(rules: Sequence[Any], lines: list[bytes], conv: Any) -> None:
    _engine_only(rules, _parse_all(lines, conv))


def measure(lines: list[bytes], rounds: int) -> dict[str, Any]:
    """Every figure of the module docstring, for ``lines``."""
    from correlation.interest import Interest
    from correlation.rules import builtin_rules_paths, load_rules
    from detector.commands._collector import quiet_collector
    from detector.parse.early import EarlyReject

    rules = load_rules(builtin_rules_paths())
    early = EarlyReject(Interest(rules))
    ways = {"normalized": early, "claims": early.claiming}
    parsed = {name: _parse_all(lines, conv) for name, conv in ways.items()}
    outcomes = {name: _feed(rules, items) for name, items in parsed.items()}
    if outcomes["normalized"][0] != outcomes["claims"][0]:
        raise AssertionError("claims changed the chains")
    claim_lines = [line for line in lines if CLAIM_MARK in line]
    out: dict[str, Any] = {"lines": len(lines), "claim_lines": len(claim_lines),
                           "claimed": early.claims, "built": outcomes["claims"][1],
                           "chains": len(outcomes["claims"][0])}  # fmt: skip
    with quiet_collector():
        for name, conv in ways.items():
            parse_s = _best(rounds, partial(_parse_all, claim_lines, conv))
            out[name] = {
                "parse_us": parse_s / max(len(claim_lines), 1) * 1e6,
                "engine_s": _best(rounds, partial(_engine_only, rules, parsed[name])),
                "both_s": _best(rounds, partial(_both, rules, lines, conv)),
            }
    return out


def table(found: dict[str, Any]) -> str:
    rows = ["| way | parse, µs per pod-claim line | engine alone, s | parse + engine, s |",
            "|---|---|---|---|"]  # fmt: skip
    for name in ("normalized", "claims"):
        part = found[name]
        rows.append(f"| {name} | {part['parse_us']:.2f} | {part['engine_s']:.3f} "
                    f"| {part['both_s']:.3f} |")  # fmt: skip
    rows.append(
        f"\n{found['lines']:,} lines, {found['claim_lines']:,} with a pod claim, "
        f"{found['claimed']:,} passed as claims, {found['built']:,} of them built by the engine; "
        f"{found['chains']} chains, the same both ways"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.claims_cost")
    parser.add_argument("--stream", type=Path, help="a JSON-lines stream (default: generate)")
    parser.add_argument("--events", type=int, default=50_000, help="events when generating")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.stream is not None:
        lines = args.stream.read_bytes().splitlines()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp), Params(events=args.events, pods=max(args.events // 200, 50)))
            lines = (Path(tmp) / STREAM).read_bytes().splitlines()
    print(table(measure(lines, args.rounds)))


if __name__ == "__main__":
    main()
