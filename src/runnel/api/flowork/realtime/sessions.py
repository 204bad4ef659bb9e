"""Who is connected to this process's Socket.IO server: GUI sessions by user, and the
one live link of each engine."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from runnel.services.engines import EngineLinkState

__all__ = ["EngineLink", "EngineLinks", "GuiSession", "GuiSessions"]


@dataclass(frozen=True, slots=True)
class GuiSession:
    sid: str
    user_id: str
    #: The lower-case address the session signed with.
    address: str


@dataclass(slots=True)
class EngineLink:
    """An authenticated ``/engine-socket`` connection."""

    sid: str
    engine_id: str
    owner_id: str
    name: str
    #: The token it signed in with, checked again on each vitals report: a reset made
    #: through another API process (which cannot reach this socket) ends it within 10 s.
    token: str = field(default="", repr=False)


@dataclass(slots=True)
class GuiSessions:
    _by_sid: dict[str, GuiSession] = field(default_factory=dict)
    _by_user: dict[str, dict[str, GuiSession]] = field(default_factory=dict)
    _by_address: dict[str, dict[str, GuiSession]] = field(default_factory=dict)
    #: Per user: the engines whose status they were told, so that an engine going away
    #: (a revoked share, a deleted engine) can be announced to exactly them.
    _announced: dict[str, set[str]] = field(default_factory=dict)

    def add(self, session: GuiSession) -> None:
        self._by_sid[session.sid] = session
        self._by_user.setdefault(session.user_id, {})[session.sid] = session
        self._by_address.setdefault(session.address, {})[session.sid] = session

    def remove(self, sid: str) -> GuiSession | None:
        session = self._by_sid.pop(sid, None)
        if session is not None:
            sessions = self._by_user.get(session.user_id, {})
            sessions.pop(sid, None)
            if not sessions:
                self._by_user.pop(session.user_id, None)
                self._announced.pop(session.user_id, None)
            same_address = self._by_address.get(session.address, {})
            same_address.pop(sid, None)
            if not same_address:
                self._by_address.pop(session.address, None)
        return session

    def get(self, sid: str) -> GuiSession | None:
        return self._by_sid.get(sid)

    def of_user(self, user_id: str) -> list[GuiSession]:
        return list(self._by_user.get(user_id, {}).values())

    def for_audience(self, audience: frozenset[str] | None) -> list[GuiSession]:
        """The sessions signed with an address of ``audience`` (None: every session)."""
        if audience is None:
            return list(self._by_sid.values())
        return [
            session
            for address in audience
            for session in self._by_address.get(address, {}).values()
        ]

    def users(self) -> Iterator[tuple[str, list[GuiSession]]]:
        """Each connected user and their sessions (a snapshot: callers await between)."""
        for user_id, sessions in list(self._by_user.items()):
            yield user_id, list(sessions.values())

    def mark(self, user_id: str, engine_id: str, *, known: bool) -> bool:
        """Record whether ``user_id`` was told about ``engine_id``; returns what was
        recorded before."""
        if user_id not in self._by_user:
            return False
        engines = self._announced.setdefault(user_id, set())
        before = engine_id in engines
        if known:
            engines.add(engine_id)
        else:
            engines.discard(engine_id)
        return before

    def announced_to(self, engine_id: str) -> list[str]:
        return [u for u, engines in self._announced.items() if engine_id in engines]


@dataclass(slots=True)
class EngineLinks:
    _by_sid: dict[str, EngineLink] = field(default_factory=dict)
    _by_engine: dict[str, EngineLink] = field(default_factory=dict)
    #: When each engine's live link ended (it has none now), by the given clock.
    _ended: dict[str, float] = field(default_factory=dict)
    #: No other process holds engine links (``EngineLinkView.exclusive``).
    exclusive: bool = False
    clock: Callable[[], float] = time.time

    def add(self, link: EngineLink) -> EngineLink | None:
        """Make ``link`` the engine's live link; returns the one it replaces."""
        previous = self._by_engine.get(link.engine_id)
        self._by_sid[link.sid] = link
        self._by_engine[link.engine_id] = link
        self._ended.pop(link.engine_id, None)
        return previous

    def remove(self, sid: str) -> tuple[EngineLink | None, bool]:
        """Forget the link on ``sid``; returns it and whether it was the engine's live
        link (a replaced link going away leaves the engine online)."""
        link = self._by_sid.pop(sid, None)
        if link is None:
            return None, False
        current = self._by_engine.get(link.engine_id)
        if current is link:
            del self._by_engine[link.engine_id]
            self._ended[link.engine_id] = self.clock()
            return link, True
        return link, False

    def mark_ended(self, engine_id: str, at: float) -> None:
        """The engine's connection to another process ended at ``at``: unless it is
        linked here, it counts as gone since then."""
        if engine_id not in self._by_engine:
            self._ended[engine_id] = max(at, self._ended.get(engine_id, at))

    def link_state(self, engine_id: str) -> EngineLinkState | None:
        """``EngineLinkView.link_state``: linked now, or when its link here ended."""
        if engine_id in self._by_engine:
            return EngineLinkState(linked=True)
        ended = self._ended.get(engine_id)
        return None if ended is None else EngineLinkState(linked=False, ended_at=ended)

    def by_sid(self, sid: str) -> EngineLink | None:
        return self._by_sid.get(sid)

    def by_engine(self, engine_id: str) -> EngineLink | None:
        return self._by_engine.get(engine_id)

    def live(self) -> list[EngineLink]:
        return list(self._by_engine.values())

    def all_sids(self) -> list[str]:
        return list(self._by_sid)
