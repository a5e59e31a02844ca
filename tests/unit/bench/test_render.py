"""The figures tables: CPU-rate ratios per arrival order, scores and chain digests."""

from __future__ import annotations

from bench.render import Row, table

TRUTH = {"chains": [{"rule": "exec-pivot", "pod": "ns/q", "variant": 0}]}


def _results(chains: list[list[object]]) -> dict[str, object]:
    sha = "cd" * 32 if chains else ""
    return {
        "decode": {"rate": 1.0, "cpu_rate": 400_000.0},
        "msgspec": {"rate": 1.0, "cpu_rate": 1_000_000.0},
        "eql_pipeline": {"events": 100, "process_cpu_seconds": 0.005, "peak_rss_kb": 40 * 1024},
        "cli": {
            "cpu_rate": 60_000.0,
            "peak_rss_kb": 50 * 1024,
            "chains": chains,
            "chains_sha256": sha,
        },  # fmt: skip
        "ours_engine": {"rate": 1.0},
        "truth": TRUTH,
    }


def test_orders_table_ratios_scores_and_digest() -> None:
    rows = [
        Row(200_000, 1000, "ordered", 3, _results([["exec-pivot", ["ns/q"], 0]])),
        Row(200_000, 1000, "shuffled", 3, _results([])),
    ]
    lines = table(rows, "now").splitlines()
    ordered = next(line for line in lines if "| ordered |" in line)
    shuffled = next(line for line in lines if "| shuffled |" in line)
    # d/e: the replay process 60k / the eql process 100 / 0.005 s = 20k; d/a 60k / 400k;
    # d/a' 60k / 1000k; the replay's own peak RSS / eql's; recall; the CLI's chain digest
    for cell in ("| 3.00× |", "| 0.15× |", "| 0.06× |", "50 / 40 MiB", "| 1/1 |", "`cdcdcdcdcdcd`"):
        assert cell in ordered, cell
    assert "| —/1 |" in shuffled and "`—`" in shuffled  # no chains found: no score
    assert any("(b) our parse" in line for line in lines)  # ordered: the detail table too
