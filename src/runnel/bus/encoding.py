"""Encode each event once per wire format, however many subscribers send it.

Every subscriber of the bus receives the *same* ``Event`` object, so the sockets of one
dialect can share the work of encoding it::

    cache = EncodeCache()                      # one per process (or per dialect)
    ...
    async for item in subscription:            # in each socket's task
        if isinstance(item, Event):
            await websocket.send_bytes(cache.encode(item, "flowengine", to_flowengine))

The first socket encodes; the others find the result. Entries are keyed by
``(execution id, seq, format name)`` and only count as hits for the identical event object,
so an event reloaded from the store (a different object) is simply encoded again and never
confused with another. The cache keeps the newest ``max_entries`` results (events arrive
roughly in time order, so the oldest go first). Use it from one event loop; an encoder that
depends on the subscriber must use its own format name, or no cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from runnel.model.events import Event

__all__ = ["DEFAULT_MAX_ENTRIES", "EncodeCache"]

_T = TypeVar("_T")

DEFAULT_MAX_ENTRIES: Final = 4096


class EncodeCache:
    """A bounded memo of ``encoder(event)`` per (event, format name)."""

    __slots__ = ("_entries", "_max_entries", "hits", "misses")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: dict[tuple[str, int, str], tuple[Event, Any]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def encode(self, event: Event, format_name: str, encoder: Callable[[Event], _T]) -> _T:
        """``encoder(event)``, computed once for this event object and format name."""
        key = (event.execution_id, event.seq, format_name)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is event:
            self.hits += 1
            value: _T = entry[1]
            return value
        self.misses += 1
        encoded = encoder(event)
        entries = self._entries
        if entry is not None:
            del entries[key]  # re-inserted below as the newest
        elif len(entries) >= self._max_entries:
            del entries[next(iter(entries))]
        entries[key] = (event, encoded)
        return encoded

    def clear(self) -> None:
        self._entries.clear()
