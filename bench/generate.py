"""Seeded stream generator: benign noise and planted chains, merged by event time.

Writes two files into ``out_dir``::

    stream.jsonl   one JSON document per line, Falco alerts and audit Events mixed,
                   in event-time order (the eql peer requires sorted input)
    truth.json     the parameters, counts, and one record per planted chain

Streaming: noise comes from an endless generator and planted documents (a few hundred)
are merged in as their time comes, so 5e6 events never sit in memory at once. The same
parameters always produce byte-identical files.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.cluster import Cluster
from bench.noise import Noise
from bench.plant import KINDS, Planter
from synthetic import jsonl

START_NS = 1_772_445_600 * 1_000_000_000  # 2026-03-02T10:00:00Z
STREAM = "stream.jsonl"
TRUTH = "truth.json"


class GenerateError(ValueError):
    """The parameters cannot produce a valid stream (e.g. too short for the chains)."""


@dataclass(frozen=True)
class Params:
    events: int
    pods: int
    namespaces: int = 0  # 0 = one namespace per 25 pods, at least 4
    chains: int = 0  # 0 = one per 20k events, at least 12, rounded up to all six kinds
    seed: int = 7
    rate: float = 250.0  # events per second of event time
    falco_ratio: float = 0.03
    gap_s: float = 75.0  # time between a planted chain's steps

    def resolved(self) -> Params:
        namespaces = self.namespaces or max(4, self.pods // 25)
        chains = self.chains or max(12, self.events // 20_000)
        chains = -(-chains // len(KINDS)) * len(KINDS)
        return Params(
            self.events, self.pods, namespaces, chains, self.seed, self.rate,
            self.falco_ratio, self.gap_s,
        )  # fmt: skip


def dataset_dir(root: Path, params: Params) -> Path:
    return root / f"e{params.events}-p{params.pods}-s{params.seed}"


def generate(out_dir: Path, params: Params) -> dict[str, Any]:
    """Write ``stream.jsonl`` and ``truth.json``; return the truth document."""
    params = params.resolved()
    rng = random.Random(params.seed)
    cluster = Cluster(rng, params.pods, params.namespaces)
    planted, truths = _plant_all(cluster, rng, params)
    noise = Noise(cluster, rng, params.falco_ratio).stream(START_NS, int(1e9 / params.rate))
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"events": 0, "falco": 0, "k8s_audit": 0}
    with (out_dir / STREAM).open("wb", buffering=1 << 20) as out:
        for doc in _merge(noise, planted, params.events):
            out.write(jsonl.line(doc))
            counts["events"] += 1
            counts["falco" if "rule" in doc else "k8s_audit"] += 1
    truth = {"params": asdict(params), "counts": counts, "chains": truths}
    (out_dir / TRUTH).write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth


def _plant_all(
    cluster: Cluster, rng: random.Random, params: Params
) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]]]:
    planter = Planter(cluster, rng, params.gap_s)
    duration_ns = int(params.events / params.rate * 1e9)
    usable = duration_ns - planter.span_ns() - int(60e9)
    if usable <= 0:
        raise GenerateError(
            f"{params.events} events at {params.rate}/s last {duration_ns / 1e9:.0f}s: too short "
            f"for chains spanning {planter.span_ns() / 1e9:.0f}s; lower --rate or --gap"
        )
    docs: list[tuple[int, dict[str, Any]]] = []
    truths = []
    for i in range(params.chains):
        start = START_NS + int(60e9) + usable * i // params.chains
        chain_docs, truth = planter.plant(KINDS[i % len(KINDS)], start, i // len(KINDS))
        docs.extend(chain_docs)
        truths.append(truth)
    docs.sort(key=lambda item: item[0])
    return docs, truths


def _merge(
    noise: Iterator[tuple[int, dict[str, Any]]],
    planted: list[tuple[int, dict[str, Any]]],
    total: int,
) -> Iterator[dict[str, Any]]:
    """``total`` documents: all planted ones, the rest noise, in time order."""
    remaining_noise = total - len(planted)
    index = 0
    for time_ns, doc in noise:
        if remaining_noise == 0:
            break
        while index < len(planted) and planted[index][0] <= time_ns:
            yield planted[index][1]
            index += 1
        yield doc
        remaining_noise -= 1
    yield from (doc for _, doc in planted[index:])
