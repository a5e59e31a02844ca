"""The figures table (markdown) from the per-dataset stage results."""

from __future__ import annotations

from typing import Any

Row = tuple[int, int, int, dict[str, Any]]


def _k(rate: float) -> str:
    return f"{rate / 1000:.0f}k" if rate else "—"


def _rate(result: dict[str, Any], name: str) -> float:
    return float(result.get(name, {}).get("rate", 0.0))


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if a and b else "—"


def _per_partial(r: dict[str, Any]) -> str:
    per = r.get("ours_partials", {}).get("bytes_per_partial")
    return f"{per:.0f}" if per else "—"


def table(rows: list[Row], when: str) -> str:
    from bench.report import agreement, score

    head = (
        "| events | pods | runs | (a) orjson decode | (b) our parse | (c) our engine | "
        "eql engine 4q | eql engine 3q | (d) our replay | (e) eql pipeline | d/e | c/eql3q | "
        "d/a | peak RSS (d) | live partials | B/partial | snapshot | latency p50/p99/max | "
        "recall | false chains | eql agrees |"
    )
    lines = [f"Run {when}.", "", head, "|" + "---|" * (head.count("|") - 1)]
    notes: list[str] = []
    for events, pods, reps, r in rows:
        truth = r["truth"]["chains"]
        engine, replay = r.get("ours_engine", {}), r.get("ours_replay", {})
        ours = replay.get("chains") or engine.get("chains") or []
        eql = [[m[0], list(m[1]), m[2]] for m in r.get("eql_pipeline", {}).get("matches", [])]
        s = score(truth, ours) if ours else None
        diff = agreement(truth, ours, eql) if ours else ["ours not run"]
        lat = engine.get("latency_ns", {})
        a, d, e = _rate(r, "decode"), _rate(r, "ours_replay"), _rate(r, "eql_pipeline")
        snap = (
            f"{engine['snapshot_ms']:.0f} ms / {engine['snapshot_bytes'] / 1024:.0f} KiB"
            if "snapshot_ms" in engine else "—"
        )  # fmt: skip
        lines.append(
            f"| {events:.0e} | {pods:.0e} | {reps} | {_k(a)} | {_k(_rate(r, 'ours_parse'))} | "
            f"{_k(_rate(r, 'ours_engine'))} | {_k(_rate(r, 'eql_engine'))} | "
            f"{_k(_rate(r, 'eql_engine3'))} | {_k(d)} | {_k(e)} | {_ratio(d, e)} | "
            f"{_ratio(_rate(r, 'ours_engine'), _rate(r, 'eql_engine3'))} | {_ratio(d, a)} | "
            f"{replay.get('peak_rss_kb', 0) / 1024:.0f} MiB | {engine.get('live_partials', '—')} | "
            f"{_per_partial(r)} | {snap} | {lat.get('p50_ms', 0):.3f}/{lat.get('p99_ms', 0):.3f}/"
            f"{lat.get('max_ms', 0):.2f} ms | "
            f"{s['found'] if s else '—'}/{len(truth)} | {s['false'] if s else '—'} | "
            f"{'yes' if not diff else 'see notes'} |"
        )
        notes.extend(_notes(events, pods, r, s, diff))
    return "\n".join([*lines, "", *notes])


def _notes(
    events: int, pods: int, r: dict[str, Any], s: dict[str, Any] | None, diff: list[str]
) -> list[str]:
    tag = f"{events:.0e} events / {pods:.0e} pods"
    out = []
    errors = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
    if errors:
        out.append(f"- {tag}: stage errors: {errors}")
    if s and (s["missed"] or s["false"]):
        out.append(f"- {tag}: missed {s['missed']}; false {s['false_examples']}")
    if diff:
        out.append(f"- {tag}: ours vs eql on shared rules: {diff}")
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
    if r.get("cli_seconds"):
        out.append(
            f"- {tag}: `detector replay` CLI once: {events / r['cli_seconds'] / 1000:.0f}k events/s"
        )
    return out
