"""Event publish/subscribe: the executor publishes, live views (sockets) subscribe.

``MemoryBus`` serves one process. A bus for many processes (PostgreSQL LISTEN/NOTIFY) will
implement the same ``Bus`` protocol, feeding the events it receives into a local
``MemoryBus`` so that its subscriptions behave the same.

A ``Subscription`` yields ``Event`` items and, when its consumer fell behind, one ``Lagged``
item saying how many events it missed; see ``runnel.bus.memory``. ``EncodeCache`` lets the
sockets of one wire format encode each event once.
"""

from __future__ import annotations

from typing import Protocol

from runnel.bus.encoding import EncodeCache
from runnel.bus.memory import (
    DEFAULT_MAX_QUEUE,
    BusItem,
    Lagged,
    MemoryBus,
    Subscription,
    SubscriptionClosed,
)
from runnel.model.events import Event

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "Bus",
    "BusItem",
    "EncodeCache",
    "Lagged",
    "MemoryBus",
    "Subscription",
    "SubscriptionClosed",
]


class Bus(Protocol):
    """What the engine, the worker and the API need of an event bus. Structurally also
    the engine's ``EventSink`` port."""

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to live subscribers; never blocks and never raises."""
        ...

    def subscribe(
        self,
        *,
        execution_id: str | None = None,
        workflow_id: str | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Subscription:
        """Events published from now on matching the filters (None: any)."""
        ...

    async def close(self) -> None:
        """End every subscription and release resources. Idempotent."""
        ...
