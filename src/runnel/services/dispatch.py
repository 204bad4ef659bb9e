"""How the services reach whatever runs executions, without importing it.

The embedded worker implements ``Dispatcher`` in one process; the multi-node worker pool
implements it over the database's notifications.
"""

from __future__ import annotations

from typing import Protocol

from runnel.engine.control import ControlSignal

__all__ = ["Dispatcher"]


class Dispatcher(Protocol):
    def submit(self, execution_id: str) -> None:
        """An execution was queued: wake a worker to claim it."""
        ...

    def signal(self, execution_id: str, signal: ControlSignal) -> bool:
        """Pause, resume or cancel a running execution; False if none here runs it."""
        ...
