"""The figures tables (markdown) from the per-dataset stage results.

Two tables: replay against the eql pipeline and the decode floors in every arrival
order, in CPU time (the machine is shared, so wall time moves with the neighbours):
``detector replay`` and the eql pipeline as whole processes (start-up and reading
included), the floors over their timed loops; and the ordered streams' detail (every
stage, engines alone, memory, snapshot, latency) in wall time as before.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from bench.orders import ORDERED
from bench.score import agreement, score


class Row(NamedTuple):
    events: int
    pods: int
    order: str
    runs: int
    results: dict[str, Any]


def _k(rate: float) -> str:
    return f"{rate / 1000:.0f}k" if rate else "—"


def _rate(result: dict[str, Any], name: str, key: str = "rate") -> float:
    return float(result.get(name, {}).get(key, 0.0))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def _per_partial(r: dict[str, Any]) -> str:
    per = r.get("ours_partials", {}).get("bytes_per_partial")
    return f"{per:.0f}" if per else "—"


def _chains(r: dict[str, Any]) -> list[list[Any]]:
    for name in ("cli", "ours_replay", "ours_engine"):
        if r.get(name, {}).get("chains"):
            return list(r[name]["chains"])
    return []


def _sha(r: dict[str, Any]) -> str:
    for name in ("cli", "ours_replay"):
        if r.get(name, {}).get("chains_sha256"):
            return str(r[name]["chains_sha256"])[:12]
    return "—"


def table(rows: list[Row], when: str) -> str:
    notes: list[str] = []
    for row in rows:
        notes.extend(_notes(row))
    detail = [row for row in rows if row.order == ORDERED and "ours_engine" in row.results]
    parts = [f"Run {when}.", "", *_orders_table(rows)]
    if detail:
        parts += ["", *_detail_table(detail)]
    return "\n".join([*parts, "", *notes])


def _head(*columns: str) -> list[str]:
    """A markdown table's header and separator lines."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _orders_table(rows: list[Row]) -> list[str]:
    """Replay vs eql and the floors, per arrival order: CPU time of whole processes."""
    lines = _head(
        "events", "pods", "order", "runs", "(a) orjson decode", "(a') msgspec decode",
        "(d) `detector replay`", "(e) eql pipeline", "d/e", "d/a", "d/a'",
        "peak RSS d / e", "recall", "false chains", "chains sha256",
    )  # fmt: skip
    for row in rows:
        r = row.results
        a, m = _rate(r, "decode", "cpu_rate"), _rate(r, "msgspec", "cpu_rate")
        d, e = _rate(r, "cli", "cpu_rate"), _process_rate(r, "eql_pipeline")
        truth = r["truth"]["chains"]
        s = score(truth, _chains(r)) if _chains(r) else None
        rss_d = r.get("cli", {}).get("peak_rss_kb", 0) / 1024
        rss_e = r.get("eql_pipeline", {}).get("peak_rss_kb", 0) / 1024
        lines.append(
            f"| {row.events:.0e} | {row.pods:.0e} | {row.order} | {row.runs} | {_k(a)} | "
            f"{_k(m)} | {_k(d)} | {_k(e)} | {_ratio(d, e)} | {_ratio(d, a)} | {_ratio(d, m)} | "
            f"{rss_d:.0f} / {rss_e:.0f} MiB | {s['found'] if s else '—'}/{len(truth)} | "
            f"{s['false'] if s else '—'} | `{_sha(r)}` |"
        )
    return lines


def _process_rate(r: dict[str, Any], name: str) -> float:
    """Events per CPU second of the stage's whole process (start-up and reading included)."""
    result = r.get(name, {})
    cpu = result.get("process_cpu_seconds", 0.0)
    return float(result.get("events", 0)) / cpu if cpu else 0.0


def _detail_table(rows: list[Row]) -> list[str]:
    """The ordered streams: every stage (wall time, as the earlier tables)."""
    lines = _head(
        "events", "pods", "runs", "(a) orjson decode", "(b) our parse", "(c) our engine",
        "eql engine 4q", "eql engine 3q", "(d) our replay", "(e) eql pipeline", "d/e",
        "c/eql3q", "d/a", "peak RSS (d)", "live partials", "B/partial", "snapshot",
        "latency p50/p99/max", "eql agrees",
    )  # fmt: skip
    for row in rows:
        r = row.results
        engine = r.get("ours_engine", {})
        lat = engine.get("latency_ns", {})
        a, d, e = _rate(r, "decode"), _rate(r, "ours_replay"), _rate(r, "eql_pipeline")
        diff = _agreement(r)
        snap = (
            f"{engine['snapshot_ms']:.0f} ms / {engine['snapshot_bytes'] / 1024:.0f} KiB"
            if "snapshot_ms" in engine else "—"
        )  # fmt: skip
        lines.append(
            f"| {row.events:.0e} | {row.pods:.0e} | {row.runs} | {_k(a)} | "
            f"{_k(_rate(r, 'ours_parse'))} | {_k(_rate(r, 'ours_engine'))} | "
            f"{_k(_rate(r, 'eql_engine'))} | {_k(_rate(r, 'eql_engine3'))} | {_k(d)} | {_k(e)} | "
            f"{_ratio(d, e)} | {_ratio(_rate(r, 'ours_engine'), _rate(r, 'eql_engine3'))} | "
            f"{_ratio(d, a)} | {r.get('ours_replay', {}).get('peak_rss_kb', 0) / 1024:.0f} MiB | "
            f"{engine.get('live_partials', '—')} | {_per_partial(r)} | {snap} | "
            f"{lat.get('p50_ms', 0):.3f}/{lat.get('p99_ms', 0):.3f}/{lat.get('max_ms', 0):.2f} ms"
            f" | {'yes' if not diff else 'see notes'} |"
        )
    return lines


def _agreement(r: dict[str, Any]) -> list[str]:
    ours = _chains(r)
    if not ours:
        return ["ours not run"]
    eql = [[m[0], list(m[1]), m[2]] for m in r.get("eql_pipeline", {}).get("matches", [])]
    return agreement(r["truth"]["chains"], ours, eql)


def _notes(row: Row) -> list[str]:
    r = row.results
    tag = f"{row.events:.0e} events / {row.pods:.0e} pods / {row.order}"
    out = []
    errors = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
    if errors:
        out.append(f"- {tag}: stage errors: {errors}")
    s = score(r["truth"]["chains"], _chains(r)) if _chains(r) else None
    if s and (s["missed"] or s["false"]):
        out.append(f"- {tag}: missed {s['missed']}; false {s['false_examples']}")
    diff = _agreement(r)
    if diff and row.order == ORDERED:
        out.append(f"- {tag}: ours vs eql on shared rules: {diff}")
    out.extend(_memory_notes(tag, r))
    return out


def _memory_notes(tag: str, r: dict[str, Any]) -> list[str]:
    out = []
    steady = r.get("ours_steady", {})
    if "samples" in steady:
        per = steady.get("bytes_per_partial_upper")
        out.append(
            f"- {tag}: steady run RSS {steady['samples'][0]['rss_kb'] // 1024}→"
            f"{steady['samples'][-1]['rss_kb'] // 1024} MiB, second-half spread "
            f"{steady['rss_second_half_spread']:.1%}, "
            f"≤{per or 0:.0f} B per live partial (RSS delta)"
        )
    partials = r.get("ours_partials", {})
    if partials.get("bytes_per_partial"):
        out.append(
            f"- {tag}: tracemalloc over the first {partials['events']:,} events: "
            f"{partials['live_partials']} live partials, {partials['bytes_per_partial']:.0f} B "
            f"each (engine full − same engine flushed), whole engine "
            f"{partials['engine_bytes'] / 2**20:.1f} MiB = "
            f"{partials['bytes_per_partial_upper']:.0f} B per partial"
        )
    return out
