"""Our pipeline's stages, timed the same way as the peer's (see ``measure.py``).

* ``ours_parse``   (b) ``detector.parse.parse_line`` per line: decode + normalize
* ``ours_engine``  (c) ``Engine.process`` alone on pre-normalized events, plus in-engine
                   latency (wall time of each ``process`` call that returns chains, i.e.
                   completing event in → chain out), live partials, snapshot cost
* ``ours_replay``  (d) the whole ``detector replay``: the CLI's own ``run`` function,
                   in-process, writing chain records to a file that is then scored
                   (and its sha256 kept: chains must not depend on arrival order)
* ``ours_steady``  parse + engine streaming, sampling RSS and live partials every chunk
                   (RSS over a long run)
* ``ours_partials`` memory per live partial match, measured directly with tracemalloc
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from bench.dataset import Clock, chunks, count_lines, rss_kb


def _engine() -> Any:
    from correlation.engine import Engine, EngineConfig
    from correlation.rules import builtin_rules_paths, load_rules

    return Engine(load_rules(builtin_rules_paths()), EngineConfig(lateness_ns=60_000_000_000))


def _parse_chunk(chunk: list[bytes]) -> list[Any]:
    from detector.errors import ParseError
    from detector.parse import parse_line

    events = []
    for line in chunk:
        try:
            events.extend(parse_line(line))
        except ParseError:
            continue  # counted by the replay stage; here only speed matters
    return events


def _chain_key(chain: Any) -> list[Any]:
    return [
        chain.rule,
        sorted(chain.entities.get("pods", ())),
        max(s.event.time_ns for s in chain.steps),
    ]


def _partials(engine: Any) -> int:
    stats = engine.stats()
    for name in ("partials", "partial_matches", "live_partials"):
        if hasattr(stats, name):
            return int(getattr(stats, name))
    return -1


def stage_parse(stream: Path) -> dict[str, Any]:
    from detector.errors import ParseError
    from detector.parse import parse_line

    clock, events, bad = Clock(), 0, 0
    for chunk in chunks(stream):
        with clock:
            for line in chunk:
                try:
                    parse_line(line)
                except ParseError:
                    bad += 1
        events += len(chunk)
    return clock.result(events, bad=bad)


def stage_engine(stream: Path) -> dict[str, Any]:
    engine = _engine()
    seconds, events, peak_partials = 0.0, 0, 0
    cpu = 0.0
    latencies: list[int] = []
    found: list[list[Any]] = []
    for chunk in chunks(stream):
        prepared = _parse_chunk(chunk)
        gc.collect()
        gc.freeze()
        cpu_start = time.process_time()
        for event in prepared:
            start = time.perf_counter_ns()
            chains = engine.process(event)
            took = time.perf_counter_ns() - start
            seconds += took / 1e9
            if chains:
                latencies.append(took)
                found.extend(_chain_key(c) for c in chains)
        cpu += time.process_time() - cpu_start
        events += len(prepared)
        peak_partials = max(peak_partials, _partials(engine))
        gc.unfreeze()
    live = _partials(engine)
    snap = _snapshot_cost(engine)
    found.extend(_chain_key(c) for c in engine.flush())
    return {
        "events": events, "seconds": seconds, "cpu_seconds": cpu, "chains": found,
        "live_partials": live, "peak_partials": peak_partials,
        "latency_ns": _percentiles(latencies), **snap,
    }  # fmt: skip


def _snapshot_cost(engine: Any) -> dict[str, Any]:
    start = time.perf_counter()
    data = engine.snapshot()
    snapshot_ms = (time.perf_counter() - start) * 1000
    from correlation.engine import Engine, EngineConfig
    from correlation.rules import builtin_rules_paths, load_rules

    rules = load_rules(builtin_rules_paths())
    start = time.perf_counter()
    Engine.restore(rules, EngineConfig(lateness_ns=60_000_000_000), data)
    restore_ms = (time.perf_counter() - start) * 1000
    return {"snapshot_ms": snapshot_ms, "snapshot_bytes": len(data), "restore_ms": restore_ms}


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {
        "n": len(ordered),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1] / 1e6,
    }


def stage_replay(stream: Path) -> dict[str, Any]:
    from detector.commands import replay

    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chains.jsonl"
        parser = argparse.ArgumentParser()
        replay.configure(parser)  # the CLI's own flags and defaults
        args = parser.parse_args([str(stream), "--quiet", "--output", str(out)])
        with clock:
            code = replay.run(args)
        data = out.read_bytes()
    return clock.result(count_lines(stream), exit=code, **chain_summary(data))


def chain_summary(data: bytes) -> dict[str, Any]:
    """A chain file's chains (rule, pods: what scoring needs) and its sha256."""
    records = [orjson.loads(line) for line in data.splitlines()]
    chains = [[r["rule"], sorted(r["entities"].get("pods", [])), 0] for r in records]
    return {"chains": chains, "chains_sha256": hashlib.sha256(data).hexdigest()}


def stage_steady(stream: Path) -> dict[str, Any]:
    engine = _engine()
    gc.collect()
    baseline = rss_kb()
    samples, start, events = [], time.perf_counter(), 0
    for chunk in chunks(stream):
        for event in _parse_chunk(chunk):
            engine.process(event)
        events += len(chunk)
        del chunk
        samples.append({"events": events, "rss_kb": rss_kb(), "partials": _partials(engine)})
    seconds = time.perf_counter() - start
    per_partial = [
        (s["rss_kb"] - baseline) * 1024 / s["partials"] for s in samples if s["partials"] > 0
    ]
    half = samples[len(samples) // 2 :]
    rss = [s["rss_kb"] for s in half]
    return {
        "events": events, "seconds": seconds, "baseline_rss_kb": baseline, "samples": samples,
        "bytes_per_partial_upper": statistics.median(per_partial) if per_partial else None,
        "rss_second_half_spread": (max(rss) - min(rss)) / statistics.median(rss) if rss else 0,
    }  # fmt: skip


def stage_snapshot(stream: Path) -> dict[str, Any]:
    """Snapshot cost at the live state left by the whole stream (no flush)."""
    engine = _engine()
    events = 0
    for chunk in chunks(stream):
        for event in _parse_chunk(chunk):
            engine.process(event)
        events += len(chunk)
    return {
        "events": events,
        "seconds": 0.0,
        "live_partials": _partials(engine),
        **_snapshot_cost(engine),
    }


PARTIALS_EVENTS = 200_000  # enough for the live state to reach its steady size


def stage_partials(stream: Path) -> dict[str, Any]:
    """Bytes per live partial match: the same engine full, then emptied, under tracemalloc.

    The engine runs over the first :data:`PARTIALS_EVENTS` events (parsed inside the traced
    region and dropped, so what stays traced is what the engine retains: partials and the
    events they hold, the expiry heap, identity bindings, memo caches). ``flush()`` then
    empties the partials and nothing else, so (held before − held after) / partials is the
    memory of a live partial match; the whole engine's growth over an empty one, divided
    by the same count, is given as an upper bound.
    """
    engine = _engine()
    gc.collect()
    tracemalloc.start()
    empty = tracemalloc.get_traced_memory()[0]
    start, events = time.perf_counter(), 0
    for chunk in chunks(stream):
        for event in _parse_chunk(chunk[: PARTIALS_EVENTS - events]):
            engine.process(event)
        events += min(len(chunk), PARTIALS_EVENTS - events)
        del chunk
        if events >= PARTIALS_EVENTS:
            break
    seconds = time.perf_counter() - start
    live = _partials(engine)
    gc.collect()
    full = tracemalloc.get_traced_memory()[0]
    engine.flush()
    gc.collect()
    flushed = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "events": events, "seconds": seconds, "live_partials": live,
        "bytes_per_partial": (full - flushed) / live if live > 0 else None,
        "bytes_per_partial_upper": (full - empty) / live if live > 0 else None,
        "engine_bytes": full - empty,
    }  # fmt: skip
