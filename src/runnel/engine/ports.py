"""The two ports through which the executor reaches the world.

The executor never imports the store or the bus: it hands each checkpoint to a
``CheckpointStore`` and each event to an ``EventSink``. ``runnel.testing`` has in-memory
implementations; ``runnel.store`` and ``runnel.bus`` have the real ones.
"""

from __future__ import annotations

from typing import Protocol

from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.events import Event

__all__ = ["Checkpoint", "CheckpointStore", "EventSink", "ExecutionUpdate"]


class CheckpointStore(Protocol):
    async def save(self, checkpoint: Checkpoint) -> None:
        """Make ``checkpoint`` durable; returns once it is committed."""
        ...


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver ``event`` to live subscribers; never blocks and never raises."""
        ...
