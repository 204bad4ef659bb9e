"""The two ports through which the executor reaches the world.

The executor never imports the store or the bus: it hands each checkpoint to a
``CheckpointStore`` and each event to an ``EventSink``. ``runnel.testing`` has in-memory
implementations; ``runnel.store`` and ``runnel.bus`` have the real ones.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.events import Event

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "EventSink",
    "ExecutionUpdate",
    "PipelinedCheckpointStore",
]


class CheckpointStore(Protocol):
    async def save(self, checkpoint: Checkpoint) -> None:
        """Make ``checkpoint`` durable; returns once it is committed."""
        ...


class PipelinedCheckpointStore(CheckpointStore, Protocol):
    """A store that can queue a checkpoint without the caller waiting for its commit.

    ``submit`` queues the checkpoint at once, in order with every checkpoint queued before
    it, and returns an awaitable that resolves once it is committed (or raises what
    ``save`` would). The executor uses it to let side-effect-free nodes run on while the
    checkpoints before them commit (docs/architecture.md, "Durability and scale").
    """

    def submit(self, checkpoint: Checkpoint) -> Awaitable[None]: ...


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver ``event`` to live subscribers; never blocks and never raises."""
        ...
