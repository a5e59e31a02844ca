"""The figures tables: CPU-rate ratios per arrival order, scores and chain digests."""

from __future__ import annotations

from bench.render import Row, table

TRUTH = {"chains": [{"rule": "exec-pivot", "pod": "ns/q", "variant": 0}]}


def _results(replay_cpu: float, chains: list[list[object]]) -> dict[str, object]:
    return {
        "decode": {"rate": 1.0, "cpu_rate": 400_000.0},
        "msgspec": {"rate": 1.0, "cpu_rate": 1_000_000.0},
        "ours_replay": {
            "rate": 1.0,
            "cpu_rate": replay_cpu,
            "chains": chains,
            "chains_sha256": "ab" * 32,
        },  # fmt: skip
        "eql_pipeline": {
            "rate": 1.0,
            "cpu_rate": 25_000.0,
            "events": 100,
            "process_cpu_seconds": 0.005,
            "peak_rss_kb": 40 * 1024,
        },  # fmt: skip
        "cli": {"cpu_rate": 60_000.0, "peak_rss_kb": 50 * 1024},
        "truth": TRUTH,
    }


def test_orders_table_ratios_scores_and_digest() -> None:
    rows = [
        Row(200_000, 1000, "ordered", 3, _results(100_000.0, [["exec-pivot", ["ns/q"], 0]])),
        Row(200_000, 1000, "shuffled", 3, _results(50_000.0, [])),
    ]
    text = table(rows, "now")
    lines = text.splitlines()
    ordered = next(line for line in lines if "| ordered |" in line)
    shuffled = next(line for line in lines if "| shuffled |" in line)
    # d/e 100k/25k, d/a 100k/400k, process 60k/(100/0.005 = 20k), RSS 50 / 40 MiB, recall
    for cell in ("4.00×", "0.25×", "3.00×", "50 / 40 MiB", "| 1/1 |", "`abababababab`"):
        assert cell in ordered, cell
    assert "| —/1 |" in shuffled  # no chains found: no score
    assert "(b) our parse" in text  # the ordered row gets the detail table too
