"""Timed stages, each run alone in a fresh process (``python -m bench stage NAME DIR``).

A fresh process per stage keeps peak RSS (``ru_maxrss``) honest and stops one stage's
garbage from slowing the next. Every stage streams the file in chunks, so 5e6 events are
never held at once; stages that time an engine "alone" normalize a chunk untimed, then
time only the engine over it. ``gc.freeze()`` after each untimed chunk keeps the retained
events out of the cyclic GC's way for both engines alike.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.generate import STREAM

CHUNK = 50_000


def chunks(dataset: Path) -> Iterator[list[bytes]]:
    with (dataset / STREAM).open("rb", buffering=1 << 20) as stream:
        chunk: list[bytes] = []
        for line in stream:
            chunk.append(line)
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def rss_kb() -> int:
    """Current resident set size (``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def stage_decode(dataset: Path) -> dict[str, Any]:
    """(a) orjson decode alone, nothing retained."""
    seconds, events = 0.0, 0
    for chunk in chunks(dataset):
        start = time.perf_counter()
        for line in chunk:
            orjson.loads(line)
        seconds += time.perf_counter() - start
        events += len(chunk)
    return {"events": events, "seconds": seconds}


def stage_eql_pipeline(dataset: Path) -> dict[str, Any]:
    """(e) the whole eql pipeline: decode, normalize, four sequence queries."""
    from bench.eql_peer import Normalizer, Peer

    normalize, peer, seconds, events = Normalizer(), Peer(), 0.0, 0
    for chunk in chunks(dataset):
        start = time.perf_counter()
        for line in chunk:
            peer.stream(normalize(orjson.loads(line)))
        seconds += time.perf_counter() - start
        events += len(chunk)
    peer.finish()
    return {"events": events, "seconds": seconds, "matches": peer.matches}


def _eql_engine(dataset: Path, rules: tuple[str, ...]) -> dict[str, Any]:
    from bench.eql_peer import Normalizer, Peer

    normalize, peer, seconds, events = Normalizer(), Peer(rules), 0.0, 0
    for chunk in chunks(dataset):
        prepared = [normalize(orjson.loads(line)) for line in chunk]
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        for event in prepared:
            peer.stream(event)
        seconds += time.perf_counter() - start
        events += len(prepared)
        gc.unfreeze()
    peer.finish()
    return {"events": events, "seconds": seconds, "matches": peer.matches}


def stage_eql_engine(dataset: Path) -> dict[str, Any]:
    """eql engine alone, the four queries EQL can express, on pre-normalized events."""
    from bench.eql_peer import QUERIES

    return _eql_engine(dataset, tuple(QUERIES))


def stage_eql_engine3(dataset: Path) -> dict[str, Any]:
    """eql engine alone with the issue's three queries (recon, exec, imds)."""
    from bench.eql_peer import ISSUE_QUERIES

    return _eql_engine(dataset, ISSUE_QUERIES)


def _ours() -> dict[str, Callable[[Path], dict[str, Any]]]:
    from bench import ours

    return {
        "ours_parse": ours.stage_parse,
        "ours_engine": ours.stage_engine,
        "ours_replay": ours.stage_replay,
        "ours_snapshot": ours.stage_snapshot,
        "ours_partials": ours.stage_partials,
        "ours_steady": ours.stage_steady,
    }


STAGES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "decode": stage_decode,
    "eql_pipeline": stage_eql_pipeline,
    "eql_engine": stage_eql_engine,
    "eql_engine3": stage_eql_engine3,
}


def run_stage(name: str, dataset: Path) -> int:
    """Run one stage and print its result as one JSON line on stdout."""
    table = {**STAGES, **_ours()} if name.startswith("ours") else STAGES
    if name not in table:
        print(
            f"error: unknown stage {name!r}; known: {sorted({**STAGES, **_ours()})}",
            file=sys.stderr,
        )
        return 2
    result = table[name](dataset)
    result["rate"] = result["events"] / result["seconds"] if result["seconds"] else 0.0
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result, default=list))
    return 0
