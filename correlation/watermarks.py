"""Event-time progress per input, and the engine's watermark: the minimum over inputs.

An *input* is anything that delivers events in its own order: one Falco node's HTTP
sender or gRPC stream, the audit webhook of one API server, one tailed file, one Kafka
partition, a replayed stream. Each keeps its own progress, and the engine follows the
slowest active one (the model of Flink and Beam)::

    input kind            its watermark w                                   moves with
    pulled (file, Kafka)  max_seen − disorder                               its own events
    pushed (HTTP, gRPC)   max(max_seen − disorder, now − delivery_bound)    the receiving clock

    W = min(w over active inputs)       an idle pulled input is not active;
                                        with none active: max(max_seen) + 1

``disorder`` bounds how far an input's own events run out of order; ``now`` is the
receiving clock, passed in by the caller (this module never reads a clock). A pushed
input's ``delivery_bound`` is learned from its own delays (arrival − event time): the
largest delay seen over the last :data:`DELAY_BUCKETS` buckets of ``bound_window_ns`` of
its own arrivals (a quiet input keeps what it learned), plus a quarter, held between
``bound_floor_ns`` and ``bound_ceiling_ns``. So a prompt sender gives prompt chains and
a batching one costs only its real batching delay::

    falco node A   ─e─e──e─e──e─e──e──▶ now      w_A = now − ~0.25 s
    audit webhook  ─ee──────ee────────▶ now      w_B = now − (batch wait + ¼)
    backlog file   ─e─e─e─▶ (hours behind)       w_C = max_seen_C − disorder   ← W

Clocks are distrusted within a bound: an event stamped up to ``max_skew_ns`` ahead of
``now`` moves its input as stamped (a node clock a little fast), one stamped further
ahead moves it only to ``now`` (it is still correlated at its own time, and counted as
skewed), so one forged timestamp or one broken node clock cannot run the detector ahead
of real time. :func:`clamp_to_clock` keeps restored checkpoints at or behind ``now``.

A pulled input at its end that has delivered nothing for ``idle_timeout_ns`` (the caller
says which inputs are at their end) becomes idle: it stops holding the others back, and
rejoins with its next event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

DELAY_BUCKETS: Final = 8
UNSEEN: Final = -(1 << 62)


class WatermarkConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How inputs progress. Nanoseconds; event time except where it says clock."""

    max_skew_ns: int = 60 * 1_000_000_000  # an event further ahead of now is clamped
    bound_floor_ns: int = 250_000_000  # delivery bound of a pushed input: at least
    bound_ceiling_ns: int = 60 * 1_000_000_000  # ... and at most (the webhook's 30 s + margin)
    bound_window_ns: int = 60 * 1_000_000_000  # delays are remembered this long (clock)
    idle_timeout_ns: int = 5 * 1_000_000_000  # quiet this long at its end: idle (clock)


class InputState(msgspec.Struct, array_like=True):
    """One input's progress (also its snapshot form)."""

    name: str
    pushed: bool
    disorder_ns: int
    max_seen_ns: int = UNSEEN  # clamped to the clock, see the module docstring
    last_arrival_ns: int = 0  # receiving clock at its last event (0: none given)
    idle: bool = False
    delays: list[int] = msgspec.field(default_factory=lambda: [0] * DELAY_BUCKETS)
    bucket: int = 0  # clock // bucket width of the newest delay bucket
    events: int = 0
    late: int = 0
    late_max_ns: int = 0  # how far behind the watermark the latest late event was
    skewed: int = 0


class Inputs:
    """Every input's state, and the global watermark computed from them."""

    def __init__(self, config: WatermarkConfig) -> None:
        self.config = config
        self.by_name: dict[str, InputState] = {}
        self.now_ns = 0  # the receiving clock, never moving back
        self.watermark = UNSEEN
        self._bucket_ns = max(config.bound_window_ns // DELAY_BUCKETS, 1)
        # the delay bucket of the last clock reading: the events of a batch share their
        # arrival time, and a division of ns-sized ints costs ~0.15 µs per event
        self._bucket_at, self._bucket = -1, 0
        # the lowest watermark of the other active inputs at the last update(), when all of
        # them are pulled (None otherwise): see moved()
        self._others_floor: int | None = None

    def add(self, name: str, pushed: bool, disorder_ns: int) -> InputState:
        """Declare (or re-declare, e.g. after a restore) an input and its kind."""
        state = self.by_name.get(name)
        if state is None:
            state = self.by_name[name] = InputState(name, pushed, disorder_ns)
        else:
            state.pushed, state.disorder_ns = pushed, disorder_ns
        return state

    def saw(self, state: InputState, time_ns: int, now_ns: int) -> bool:
        """Record an event of ``state``; False when its stamp was clamped (clock skew)."""
        state.events += 1
        progress, honest = time_ns, True
        if now_ns:
            if now_ns > self.now_ns:
                self.now_ns = now_ns
            state.last_arrival_ns = now_ns
            if time_ns > now_ns + self.config.max_skew_ns:
                progress, honest = now_ns, False
                state.skewed += 1
            elif state.pushed:
                self._delay(state, now_ns - time_ns, now_ns)
        if progress > state.max_seen_ns:
            state.max_seen_ns = progress
        state.idle = False  # it spoke: it holds the others back again
        return honest

    def _delay(self, state: InputState, delay_ns: int, now_ns: int) -> None:
        if now_ns != self._bucket_at:
            self._bucket_at, self._bucket = now_ns, now_ns // self._bucket_ns
        bucket = self._bucket
        if bucket != state.bucket:
            _rotate(state, bucket)
        slot = bucket % DELAY_BUCKETS
        if delay_ns > state.delays[slot]:
            state.delays[slot] = delay_ns

    def bound(self, state: InputState) -> int:
        """The delivery bound of a pushed input (see the module docstring). Delays are
        forgotten only as newer arrivals replace them: a batching sender that went quiet
        (an API server with nothing to report) keeps its bound for its next batch."""
        learned = max(state.delays) * 5 // 4
        return min(max(learned, self.config.bound_floor_ns), self.config.bound_ceiling_ns)

    def of(self, state: InputState) -> int:
        """The watermark of one input."""
        own = state.max_seen_ns - state.disorder_ns if state.max_seen_ns > UNSEEN else UNSEEN
        if state.pushed and self.now_ns:
            own = max(own, self.now_ns - self.bound(state))
        return own

    def advance(self, now_ns: int, at_end: Iterable[str] = ()) -> None:
        """The clock moved; inputs at their end and quiet for the idle timeout go idle."""
        if now_ns > self.now_ns:
            self.now_ns = now_ns
        quiet_since = self.now_ns - self.config.idle_timeout_ns
        for name in at_end:
            state = self.by_name.get(name)
            if state is None or state.pushed:
                continue
            if not state.last_arrival_ns or state.last_arrival_ns <= quiet_since:
                state.idle = True  # (no arrival clock at all, as in a replay: quiet)
        self.update()

    def update(self) -> InputState | None:
        """Recompute the global watermark (it never moves back); returns the input that
        holds it back (None when every input is idle)."""
        lowest, holder = UNSEEN, None
        for state in self.by_name.values():
            if not state.idle:
                own = self.of(state)
                if holder is None or own < lowest:
                    lowest, holder = own, state
        if holder is None:
            seen = [s.max_seen_ns for s in self.by_name.values() if s.max_seen_ns > UNSEEN]
            lowest = max(seen) + 1 if seen else UNSEEN
        if lowest > self.watermark:
            self.watermark = lowest
        self._others_floor = self._floor_of_others(holder)
        return holder

    def moved(self, holder: InputState) -> InputState | None:
        """:meth:`update` after the progress of ``holder`` (the input update() returned)
        moved, in O(1) when the answer is plain: a pulled input's watermark only rises
        (``max_seen`` never moves back), so if the other inputs are all pulled and the
        holder is still strictly below their floor at the last update, it still holds
        the watermark back, at its own watermark. Otherwise the full recomputation."""
        floor = self._others_floor
        if floor is not None:
            own = self.of(holder)
            if own < floor:
                if own > self.watermark:
                    self.watermark = own
                return holder
        return self.update()

    def _floor_of_others(self, holder: InputState | None) -> int | None:
        """The lowest watermark of the active inputs other than ``holder`` (a value above
        every watermark when there are none); None when one of them is pushed (its
        watermark may fall as its delivery bound grows, so no floor holds)."""
        if holder is None:
            return None
        floor = 1 << 63
        for state in self.by_name.values():
            if state is holder or state.idle:
                continue
            if state.pushed:
                return None
            floor = min(floor, self.of(state))
        return floor

    def restore(self, states: Iterable[InputState], now_ns: int) -> None:
        """Inputs from a snapshot; with a clock, no progress ahead of ``now + skew``.

        The receiving clock itself is not moved to ``now``: events accepted before the
        restart and replayed from the intake log arrive with their original stamps, and a
        pushed input at ``now − bound`` would count every one of them late. The clock
        moves on with those arrivals and the ticks, as it does while running."""
        for state in states:
            if now_ns:
                state.max_seen_ns = clamp_to_clock(state.max_seen_ns, now_ns)
            self.by_name[state.name] = state
        self.update()


def clamp_to_clock(time_ns: int, now_ns: int) -> int:
    """``time_ns``, but never past the clock (what a restored checkpoint may claim)."""
    return min(time_ns, now_ns)


def _rotate(state: InputState, bucket: int) -> None:
    """Move the newest delay bucket to ``bucket``, forgetting buckets that fell out."""
    gap = bucket - state.bucket
    if gap >= DELAY_BUCKETS or gap < 0:
        state.delays[:] = [0] * DELAY_BUCKETS
    else:
        for step in range(1, gap + 1):
            state.delays[(state.bucket + step) % DELAY_BUCKETS] = 0
    state.bucket = bucket
