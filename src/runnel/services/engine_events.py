"""What connected engines must hear at once, as a port the realtime layer implements.

The services announce changes here (a share granted or revoked, a token reset, an engine
deleted or renamed, the kill-switch list changed); whatever holds the engines' sockets (the
gateway's Socket.IO ``/engine-socket``) listens and pushes ``force_refresh_auth_list``,
``force_sync_kill_switch`` or a disconnect. Without a listener the events go nowhere: the
services never wait on a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AuthListChanged",
    "EngineDeleted",
    "EngineEvent",
    "EngineEventHub",
    "EngineEvents",
    "EngineListener",
    "EngineRenamed",
    "EngineTokenReset",
    "KillSwitchChanged",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuthListChanged:
    """Who may use the engine changed: it should fetch get-engine-auth-info again."""

    engine_id: str


@dataclass(frozen=True, slots=True)
class EngineTokenReset:
    """The engine's token was replaced: a connection made with the old one must end."""

    engine_id: str


@dataclass(frozen=True, slots=True)
class EngineDeleted:
    engine_id: str


@dataclass(frozen=True, slots=True)
class EngineRenamed:
    engine_id: str
    name: str


@dataclass(frozen=True, slots=True)
class KillSwitchChanged:
    """The list of disabled components is now ``component_ids``."""

    component_ids: tuple[str, ...]


EngineEvent = AuthListChanged | EngineTokenReset | EngineDeleted | EngineRenamed | KillSwitchChanged

#: Receives every engine event; must not raise for long (errors are logged and dropped).
EngineListener = Callable[[EngineEvent], Awaitable[None]]


class EngineEvents(Protocol):
    """The port: the services call ``notify`` after a change is committed."""

    async def notify(self, event: EngineEvent) -> None: ...


class EngineEventHub:
    """The in-process implementation: hands each event to every listener, in order."""

    def __init__(self) -> None:
        self._listeners: list[EngineListener] = []

    def listen(self, listener: EngineListener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def notify(self, event: EngineEvent) -> None:
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:
                # The change is committed whatever a socket does; a listener's failure must
                # not turn the request that made it into an error.
                log.exception("engine event listener failed on %r", event)
