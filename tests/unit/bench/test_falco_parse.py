"""``python -m bench falco-parse`` measures what its rows say (a tick is a tick)."""

from __future__ import annotations

from bench.falco_parse import cases
from detector.parse.bodies import falco_body


def test_each_case_is_parsed_the_way_its_name_says() -> None:
    found = {name: falco_body(body, early) for name, (body, early, _) in cases().items()}
    assert {name: not event.id for name, event in found.items()} == {
        name: tick for name, (_, _, tick) in cases().items()
    }
    assert sum(1 for _, _, tick in cases().values() if tick) == 1
    plain = found["host alert, no early reject"]
    assert found["host alert, early reject (a step wants it: kept)"] == plain
    assert found["host alert, early reject (built-in rules: tick)"].time_ns == plain.time_ns
