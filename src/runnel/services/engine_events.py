"""What connected engines must hear at once, as a port the realtime layer implements.

The services announce changes here (a share granted or revoked, a token reset, an engine
deleted or renamed, the kill-switch list changed; the gateway, an engine's connection
ending); whatever holds the engines' sockets (the
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
    "EngineDisconnected",
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


@dataclass(frozen=True, slots=True)
class EngineDisconnected:
    """The engine's gateway connection ended at ``at`` (unix seconds), on the process that
    held it: the others stop showing it online from its last report."""

    engine_id: str
    at: float


EngineEvent = (
    AuthListChanged
    | EngineTokenReset
    | EngineDeleted
    | EngineRenamed
    | KillSwitchChanged
    | EngineDisconnected
)

#: Receives every engine event; must not raise for long (errors are logged and dropped).
EngineListener = Callable[[EngineEvent], Awaitable[None]]


class EngineEvents(Protocol):
    """The port: the services call ``notify`` after a change is committed."""

    async def notify(self, event: EngineEvent) -> None: ...


class EngineEventHub:
    """The in-process implementation: hands each event to every listener, in order.

    With several processes (PostgreSQL), a relay (``relay_to``;
    ``runnel.services.engine_event_relay``) also sends each event this process announces
    to the others, and hands theirs to ``receive``: every process's listeners hear every
    change, wherever it was made."""

    def __init__(self) -> None:
        self._listeners: list[EngineListener] = []
        self._relay: EngineListener | None = None

    def relay_to(self, relay: EngineListener | None) -> None:
        """Send the events announced here on with ``relay`` too (None: no longer)."""
        self._relay = relay

    def listen(self, listener: EngineListener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def notify(self, event: EngineEvent) -> None:
        """A change made in this process: this process's listeners, then the relay."""
        await self.receive(event)
        relay = self._relay
        if relay is not None:
            try:
                await relay(event)
            except Exception:
                log.exception("engine event relay failed on %r", event)

    async def receive(self, event: EngineEvent) -> None:
        """Hand ``event`` to this process's listeners only (the relay calls this with
        the events of other processes)."""
        for listener in list(self._listeners):
            try:
                await listener(event)
            except Exception:
                # The change is committed whatever a socket does; a listener's failure must
                # not turn the request that made it into an error.
                log.exception("engine event listener failed on %r", event)
