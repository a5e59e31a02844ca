"""``python -m bench.claims_cost`` measures a stream with claims in it, same chains both ways."""

from __future__ import annotations

from pathlib import Path

from bench.claims_cost import measure, table
from bench.generate import STREAM, Params, generate


def test_a_small_stream_has_claims_and_the_same_chains_both_ways(tmp_path: Path) -> None:
    generate(tmp_path, Params(events=4_000, pods=50, rate=25.0, gap_s=20.0))
    found = measure((tmp_path / STREAM).read_bytes().splitlines(), rounds=1)
    assert 0 < found["claimed"] <= found["claim_lines"] < found["lines"]
    assert found["chains"] > 0  # measure raises when the two ways' chains differ
    assert "| claims |" in table(found)
