"""The exception tree of the correlation library.

::

    CorrelationError          base of everything this package raises on purpose
     ├── RuleError            chain-rule files are invalid; ``errors`` holds every problem
     │                        as ``"path:line: message"`` (all of them, not just the first)
     └── SnapshotError        engine state bytes cannot be decoded into a snapshot

The engine itself never raises on an event: bad events are counted instead.
"""

from __future__ import annotations


class CorrelationError(Exception):
    """Base class of the correlation library's own errors."""


class RuleError(CorrelationError):
    """One or more rule files are invalid; nothing from them was loaded."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        shown = "\n".join(self.errors[:20])
        more = f"\n... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"{len(self.errors)} rule error(s):\n{shown}{more}")


class SnapshotError(CorrelationError):
    """Snapshot bytes are not a valid engine state."""
