"""The cyclic garbage collector kept out of the way of a long run (``replay`` and ``run``).

What exists when the run starts (imported modules, rules, compiled predicates, the
restored engine, the HTTP application) is moved out of the collector's sight with
``gc.freeze()``: it is never garbage and need not be walked again at every full
collection. What a run allocates per event is acyclic and short-lived (documents,
events, lists of them; events are ``gc=False`` structs), so reference counting frees
it and the young generation is collected every :data:`GC_YOUNG` allocations instead of
Python's default 700 (over 200k events the collector ran some 260 times in ``replay``,
scanning objects that refcounting frees anyway). Garbage in cycles is still collected,
only later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

GC_YOUNG: Final = 100_000  # allocations between young-generation collections


@contextmanager
def quiet_collector(young: int = GC_YOUNG) -> Iterator[None]:
    """Freeze what exists now and collect the young generation every ``young``
    allocations; both undone on exit (an in-process caller: tests, bench)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
