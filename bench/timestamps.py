"""``python -m bench timestamps``: cost of RFC 3339 parsing per shape, fast vs general path.

Each shape is parsed ``NUMBER`` times in a loop (caches warm, as in a replay where a few
thousand distinct seconds recur), through :func:`detector.parse.timestamps.rfc3339_ns`
and through its general path alone; CPU ns per call, best of ``REPEAT`` rounds (the
machine is shared: the minimum is the least disturbed round).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

SHAPES: Final = {
    "Falco, 9 digits, Z": "2026-03-02T10:00:00.123456789Z",
    "audit MicroTime, 6 digits, Z": "2026-03-02T10:00:00.123456Z",
    "v1beta1, seconds, Z": "2026-03-02T10:00:00Z",
    "milliseconds, Z": "2026-03-02T10:00:00.123Z",
    "6 digits, +00:00": "2026-03-02T10:00:00.123456+00:00",
    "9 digits, +02:00": "2026-03-02T12:00:00.123456789+02:00",
    "seconds, -05:30": "2026-03-02T04:30:00-05:30",
    "lower case t and z": "2026-03-02t10:00:00.123456z",
}
NUMBER: Final = 100_000
REPEAT: Final = 5


def _cost(parse: Callable[[str], int], text: str) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.process_time()
        for _ in range(NUMBER):
            parse(text)
        best = min(best, time.process_time() - start)
    return best / NUMBER * 1e9


def table() -> str:
    from detector.parse import timestamps

    lines = [
        "| shape | example | rfc3339_ns | general path alone | speed-up |",
        "|---|---|---|---|---|",
    ]
    for name, text in SHAPES.items():
        assert timestamps.rfc3339_ns(text) == timestamps._general(text)  # and warms the caches
        fast, general = _cost(timestamps.rfc3339_ns, text), _cost(timestamps._general, text)
        lines.append(
            f"| {name} | `{text}` | {fast:.0f} ns | {general:.0f} ns | {general / fast:.1f}× |"
        )
    return "\n".join(lines)
