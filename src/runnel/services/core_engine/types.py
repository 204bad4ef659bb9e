"""The values every part of a Core Engine shares: who sends, what goes out, who may see it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "EngineAuthority",
    "EngineUser",
    "EnvelopeRejected",
    "Outgoing",
    "OutgoingListener",
]


@dataclass(frozen=True, slots=True)
class EngineUser:
    """The sender of a verified message."""

    #: Lower-case ``0x`` address.
    address: str
    #: The gateway's user id, when known.
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A seed-002 server message (``{"type": ..., ...}``) and who may see it."""

    message: Mapping[str, Any]
    #: Addresses that may see it; None: every user of the engine.
    audience: frozenset[str] | None = None


OutgoingListener = Callable[[Outgoing], None]


class EnvelopeRejected(Exception):
    """A client message that cannot be accepted; ``str()`` is the answer's ``error``."""


class EngineAuthority(Protocol):
    """Who may use one engine: its owner and the users it is shared with."""

    async def is_authorized(self, address: str) -> bool: ...

    async def owner_address(self) -> str | None: ...
