"""Pause Python's cyclic garbage collector around loops that build millions of small objects.

The plan's loops (tuples of Algorithm 1, windows and index entries of the packing) allocate
millions of acyclic tuples; each allocation burst triggers generational collections that walk
the whole, growing heap. Pausing the collector for those loops makes them about 20% faster and
frees nothing less: reference counting still frees everything, and there are no cycles to find.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
