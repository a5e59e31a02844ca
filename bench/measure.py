"""Timed stages, each run alone in a fresh process (``python -m bench stage NAME STREAM``).

A fresh process per stage keeps peak RSS (``ru_maxrss``) honest and stops one stage's
garbage from slowing the next. Every stage streams the file in chunks (``dataset.py``);
stages that time an engine "alone" normalize a chunk untimed, then time only the engine
over it. ``gc.freeze()`` after each untimed chunk keeps the retained events out of the
cyclic GC's way for both engines alike. Every stage reports wall and CPU seconds.

This module holds the floors and the peer's stages and the table of every stage; ours
are in ``ours.py``.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench import ours
from bench.dataset import STREAMING_CHUNK, Clock, chunks, peak_rss_kb


class _Minimal(msgspec.Struct, gc=False):
    """The least a decoder must do: tell the shapes apart and find the time."""

    auditID: str = ""
    rule: str = ""
    time: str = ""
    requestReceivedTimestamp: str = ""


def stage_decode(stream: Path) -> dict[str, Any]:
    """(a) orjson decode alone, nothing retained."""
    clock, events = Clock(), 0
    for chunk in chunks(stream, STREAMING_CHUNK):
        with clock:
            for line in chunk:
                orjson.loads(line)
        events += len(chunk)
    return clock.result(events)


def stage_msgspec(stream: Path) -> dict[str, Any]:
    """(a') msgspec decode into a four-field Struct, nothing retained."""
    decode = msgspec.json.Decoder(_Minimal).decode
    clock, events = Clock(), 0
    for chunk in chunks(stream, STREAMING_CHUNK):
        with clock:
            for line in chunk:
                decode(line)
        events += len(chunk)
    return clock.result(events)


def stage_eql_pipeline(stream: Path) -> dict[str, Any]:
    """(e) the whole eql pipeline: decode, normalize, four sequence queries."""
    from bench.eql_peer import Normalizer, Peer

    normalize, peer, clock, events = Normalizer(), Peer(), Clock(), 0
    for chunk in chunks(stream, STREAMING_CHUNK):
        with clock:
            for line in chunk:
                peer.stream(normalize(orjson.loads(line)))
        events += len(chunk)
    with clock:
        peer.finish()
    return clock.result(events, matches=peer.matches)


def _eql_engine(stream: Path, rules: tuple[str, ...]) -> dict[str, Any]:
    from bench.eql_peer import Normalizer, Peer

    normalize, peer, clock, events = Normalizer(), Peer(rules), Clock(), 0
    for chunk in chunks(stream):
        prepared = [normalize(orjson.loads(line)) for line in chunk]
        gc.collect()
        gc.freeze()
        with clock:
            for event in prepared:
                peer.stream(event)
        events += len(prepared)
        gc.unfreeze()
    peer.finish()
    return clock.result(events, matches=peer.matches)


def stage_eql_engine(stream: Path) -> dict[str, Any]:
    """eql engine alone, the four queries EQL can express, on pre-normalized events."""
    from bench.eql_peer import QUERIES

    return _eql_engine(stream, tuple(QUERIES))


def stage_eql_engine3(stream: Path) -> dict[str, Any]:
    """eql engine alone with the issue's three queries (recon, exec, imds)."""
    from bench.eql_peer import ISSUE_QUERIES

    return _eql_engine(stream, ISSUE_QUERIES)


STAGES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "decode": stage_decode,
    "msgspec": stage_msgspec,
    "eql_pipeline": stage_eql_pipeline,
    "eql_engine": stage_eql_engine,
    "eql_engine3": stage_eql_engine3,
    "ours_parse": ours.stage_parse,
    "ours_engine": ours.stage_engine,
    "ours_replay": ours.stage_replay,
    "ours_snapshot": ours.stage_snapshot,
    "ours_partials": ours.stage_partials,
    "ours_steady": ours.stage_steady,
}


def run_stage(name: str, stream: Path) -> int:
    """Run one stage and print its result as one JSON line on stdout."""
    if name not in STAGES:
        print(f"error: unknown stage {name!r}; known: {sorted(STAGES)}", file=sys.stderr)
        return 2
    result = STAGES[name](stream)
    wall, cpu = result["seconds"], result.get("cpu_seconds", 0.0)
    result["rate"] = result["events"] / wall if wall else 0.0
    result["cpu_rate"] = result["events"] / cpu if cpu else 0.0
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result, default=list))
    return 0
