"""Exponential reconnect backoff with full jitter, shared by the network sources.

Delay for attempt ``n`` (0-based) is drawn uniformly from ``[0, min(cap, initial * 2**n)]``
("full jitter"): many sidecars that lost the same Falco or broker at the same moment then
spread their retries instead of reconnecting in lock-step. :meth:`Backoff.reset` after a
connection that worked, so the next outage starts again from ``initial``.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays for successive reconnect attempts; not thread-safe, one per connection loop."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError(f"backoff needs 0 < initial <= cap, got {initial} and {cap}")
        self.initial = initial
        self.cap = cap
        self.attempts = 0
        # Jitter only needs to decorrelate peers, not to be unpredictable.
        self._rng = rng or random.Random()  # noqa: S311

    def ceiling(self) -> float:
        """The upper bound of the next delay (before jitter)."""
        # Bounded exponent: 2**attempts overflows float after ~1000 attempts.
        return min(self.cap, self.initial * 2.0 ** min(self.attempts, 62))

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds; advances the attempt count."""
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (call after a successful connection)."""
        self.attempts = 0
