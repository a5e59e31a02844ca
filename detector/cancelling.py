"""Cancelling tasks that may not end at the first cancellation (shutdown, delivery close).

A library may swallow one cancellation: Python 3.11's ``asyncio.wait_for`` does when its
inner wait ends in the same instant. A single ``cancel()`` then leaves whoever waits for
the task waiting forever, so the cancellation is sent again each :data:`CANCEL_ROUND_S`,
for :data:`CANCEL_WAIT_S` at most; the caller logs what is still running and goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

CANCEL_WAIT_S: Final = 5.0  # how long cancelled tasks may take to end
CANCEL_ROUND_S: Final = 0.5  # between two cancellations


async def cancel_until_ended(
    tasks: Callable[[], Iterable[asyncio.Task[None]]],
    ended: Callable[[float], Awaitable[bool]],
    wait_s: float = CANCEL_WAIT_S,
    round_s: float = CANCEL_ROUND_S,
) -> bool:
    """Cancel ``tasks()`` and wait ``ended(round_s)``, again each round for ``wait_s`` at
    most; whether ``ended`` said so. False: something ignored every cancellation; it is
    cancelled once more on the way out, so it ends at its next await that honours one."""
    for _ in range(max(1, round(wait_s / round_s))):
        _cancel(tasks())
        if await ended(round_s):
            return True
    _cancel(tasks())
    return False


def _cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
