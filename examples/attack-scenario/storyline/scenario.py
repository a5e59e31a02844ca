"""A scenario: the Falco and audit logs, drawing from one seeded RNG."""

from __future__ import annotations

import random

from .audit import AuditLog
from .falco import FalcoLog


class Scenario:
    """Collects alerts and audit events; ``rng`` drives every random choice, in call order."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - seeded demo data
        self.falco = FalcoLog(self.rng)
        self.audit = AuditLog(self.rng)
