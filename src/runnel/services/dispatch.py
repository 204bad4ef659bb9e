"""How the services reach whatever runs executions, without importing it.

The embedded worker implements ``Dispatcher`` in one process; the multi-node worker pool
implements it over the database's notifications.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from runnel.engine.control import ControlSignal
from runnel.engine.run import ExecutionResult, RunRequest
from runnel.model.execution import Execution

__all__ = ["Dispatcher", "InlineDispatcher", "RunInterrupted"]


class RunInterrupted(Exception):
    """``InlineDispatcher.run_now``: the run was stopped before its end (the process is
    shutting down); the store knows how far it got."""


class Dispatcher(Protocol):
    def submit(self, execution_id: str) -> None:
        """An execution was queued: wake a worker to claim it."""
        ...

    def signal(self, execution_id: str, signal: ControlSignal) -> bool:
        """Pause, resume or cancel a running execution; False if none here runs it."""
        ...


@runtime_checkable
class InlineDispatcher(Dispatcher, Protocol):
    """A dispatcher that can also run a new execution in this process at once, without
    queueing it (the embedded worker): for callers that wait for the run anyway."""

    async def run_now(self, request: RunRequest) -> ExecutionResult | None:
        """Run ``request`` (whose ``create`` is the new execution: its row is written with
        the run's first checkpoint) to its end or its first wait, and return the result;
        None, having run nothing, when it cannot take it now (at its concurrency limit,
        stopping): queue it instead. ``RunInterrupted`` if the worker stops it first."""
        ...

    def in_memory(self, execution_id: str) -> Execution | None:
        """The execution of a ``run_now`` run while it runs here (it may have no row
        yet: see ``RunRequest.history_in_memory``); None for any other."""
        ...
