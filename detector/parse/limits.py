"""Size limits every parser applies, and the helpers that enforce them.

Inputs come from the network (Falco's http_output, the audit webhook) and from files of
unknown origin, so nothing is trusted to be small. A record over a limit is refused with
reason ``too_large``; a single over-long field value is cut, because one long command
line should not cost us the whole alert.
"""

from __future__ import annotations

from typing import Final

MAX_LINE_BYTES: Final = 1 << 20  # one JSON line: Falco alerts are ~2 KiB, audit events < 100 KiB
MAX_DOCUMENT_BYTES: Final = 16 << 20  # one webhook EventList (the API server splits at 10 MiB)
MAX_FIELD_CHARS: Final = 1024  # any kept string value
MAX_OUTPUT_FIELDS: Final = 256  # keys in one Falco alert's output_fields
MAX_ITEMS: Final = 5000  # events in one EventList (the API server sends at most 400)
MAX_LIST: Final = 64  # tags, sourceIPs: anything longer is hostile, not real


def cut(value: str) -> str:
    """``value`` truncated to :data:`MAX_FIELD_CHARS`, marked with a trailing ``…``."""
    if len(value) <= MAX_FIELD_CHARS:
        return value
    return value[: MAX_FIELD_CHARS - 1] + "…"
