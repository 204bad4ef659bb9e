"""The garbage collector's settings for a long-running runnel process.

Every request or execution allocates a few hundred short-lived objects; with the default
thresholds the collector's passes over the long-lived heap (modules, the app, its routes and
models, the platform) were about a third of a webhook's CPU, and a full collection stalled
the event loop for 100-200 ms. ``settled_heap`` moves what startup allocated out of the
collector's sight (``gc.freeze``) and collects the youngest generation less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Final

__all__ = ["GC_THRESHOLD", "settled_heap"]

#: Allocations between two collections of the youngest generation (CPython's default: 700).
GC_THRESHOLD: Final = 10_000


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """While the block runs: startup's objects frozen, the youngest generation collected
    every ``GC_THRESHOLD`` allocations; both undone at the end."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
