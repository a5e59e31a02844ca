"""One compact JSON document per line (what Falco's json_output and audit log files hold)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson


def line(doc: dict[str, Any]) -> bytes:
    """``doc`` as one line: no spaces, keys in the order given, a trailing newline."""
    return orjson.dumps(doc) + b"\n"


def write(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Write ``docs`` to ``path``, one per line; returns how many."""
    count = 0
    with path.open("wb", buffering=1 << 20) as out:
        for doc in docs:
            out.write(line(doc))
            count += 1
    return count
