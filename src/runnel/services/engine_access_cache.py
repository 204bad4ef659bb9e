"""Who may use which engine, remembered for a moment: the realtime deliveries' check.

A job's events are delivered one by one, and each delivery must only reach users who may
(still) use the engine. Asking the store on each one costs a query per message (and, on
PostgreSQL, a thread hop): ``EngineAccessCache`` remembers the answers per engine for
``ACCESS_TTL_SECONDS`` and forgets an engine's answers at once when an ``EngineEvent``
says they changed (``AuthListChanged``, ``EngineDeleted``, ``EngineTokenReset``; the
``EngineEventHub`` of this process, and, on PostgreSQL, the events other processes publish
through ``runnel.services.engine_event_relay``). The TTL bounds what a change nobody
announced (a direct store edit) can be missed for.

A read that started before a change and finishes after it must not put the old answer
back: each engine has a generation, bumped by every invalidation, and an answer is kept
only if the generation did not move while it was read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Final, Generic, TypeVar

from runnel.services.engine_access import EngineAccess
from runnel.services.engine_events import (
    AuthListChanged,
    EngineDeleted,
    EngineEvent,
    EngineTokenReset,
)
from runnel.services.errors import Forbidden, NotFound
from runnel.store import SqlStore

__all__ = ["ACCESS_TTL_SECONDS", "AccessCache", "EngineAccessCache"]

#: How long an answer is trusted without an event saying it changed.
ACCESS_TTL_SECONDS: Final = 1.0
#: Entries kept per cache before the oldest are dropped (a bound, not a tuning knob).
MAX_ENTRIES: Final = 50_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class AccessCache(Generic[K, V]):
    """Values per ``(engine_id, key)``, for ``ttl`` seconds, forgotten per engine.

    ``get`` answers only what is fresh; ``load`` reads through ``read`` and keeps the
    answer unless the engine was invalidated meanwhile."""

    def __init__(
        self,
        ttl: float = ACCESS_TTL_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[tuple[str, K], tuple[float, V]] = {}
        self._generations: dict[str, int] = {}
        #: Bumped by ``forget_all``: a read that began before it keeps nothing.
        self._epoch = 0

    def get(self, engine_id: str, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` when a fresh value is known, else ``(False, None)``."""
        entry = self._entries.get((engine_id, key))
        if entry is None:
            return False, None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[(engine_id, key)]
            return False, None
        return True, value

    async def load(self, engine_id: str, key: K, read: Callable[[], Awaitable[V]]) -> V:
        """The fresh value, else ``await read()`` (kept if nothing changed meanwhile)."""
        known, value = self.get(engine_id, key)
        if known:
            return value  # type: ignore[return-value]
        stamp = (self._epoch, self._generations.get(engine_id, 0))
        fresh = await read()
        if stamp == (self._epoch, self._generations.get(engine_id, 0)):
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[(engine_id, key)] = (self._clock() + self.ttl, fresh)
        return fresh

    def forget(self, engine_id: str) -> None:
        """Drop what is known of ``engine_id`` (and whatever is being read for it)."""
        self._generations[engine_id] = self._generations.get(engine_id, 0) + 1
        for entry in [k for k in self._entries if k[0] == engine_id]:
            del self._entries[entry]

    def forget_all(self) -> None:
        self._epoch += 1
        self._entries.clear()
        self._generations.clear()


class EngineAccessCache:
    """``may_use(user_id, engine_id)`` (``EngineAccess.require_use`` as a yes/no) and
    ``authorized_addresses(engine_id)``, remembered per engine (see the module docstring).
    Listen ``on_event`` on the engine-event hub, before any other listener."""

    def __init__(
        self,
        store: SqlStore,
        access: EngineAccess,
        *,
        ttl: float = ACCESS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._access = access
        self._use: AccessCache[str, bool] = AccessCache(ttl, clock=clock)
        self._addresses: AccessCache[str, frozenset[str]] = AccessCache(ttl, clock=clock)

    def may_use_now(self, user_id: str, engine_id: str) -> bool | None:
        """The remembered answer, or None when it must be read (``may_use``)."""
        known, value = self._use.get(engine_id, user_id)
        return value if known else None

    async def may_use(self, user_id: str, engine_id: str) -> bool:
        """Whether ``user_id`` owns ``engine_id`` or it is shared with them."""

        async def read() -> bool:
            try:
                await self._access.require_use(user_id, engine_id)
            except (Forbidden, NotFound):
                return False
            return True

        return await self._use.load(engine_id, user_id, read)

    async def authorized_addresses(self, engine_id: str) -> frozenset[str]:
        """The lower-case addresses that may use ``engine_id`` (owner and shares)."""

        async def read() -> frozenset[str]:
            return frozenset(await self._store.engine_authorized_addresses(engine_id))

        return await self._addresses.load(engine_id, "", read)

    def forget(self, engine_id: str | None = None) -> None:
        """Forget one engine's answers (None: every engine's)."""
        for cache in (self._use, self._addresses):
            if engine_id is None:
                cache.forget_all()
            else:
                cache.forget(engine_id)

    async def on_event(self, event: EngineEvent) -> None:
        """The hub listener: an event that may change who uses an engine forgets it."""
        if isinstance(event, AuthListChanged | EngineDeleted | EngineTokenReset):
            self.forget(event.engine_id)
