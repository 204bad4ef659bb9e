"""The ``Dispatcher`` of the multi-node mode: reaches workers in any process over the bus.

``submit`` wakes this process's worker (if it runs one) and every idle worker elsewhere.
``signal`` acts on an execution this process runs; otherwise, if the execution is running
somewhere (as the events of every process tell), it sends the signal on the bus, and the
worker running it acts within a notification's round trip. An execution running nowhere
(queued, parked) gets False, so that the services end it themselves.
"""

from __future__ import annotations

from typing import Final

from runnel.bus.postgres import PostgresBus
from runnel.engine.control import ControlSignal
from runnel.model.events import Event, EventType
from runnel.model.execution import ExecutionStatus
from runnel.store import SqlStore
from runnel.worker.cluster import ClusterWorker

__all__ = ["ClusterDispatcher"]

_RUNNING: Final = frozenset({ExecutionStatus.RUNNING.value, ExecutionStatus.PAUSED.value})


class ClusterDispatcher:
    """Implements ``runnel.services.dispatch.Dispatcher`` for many processes."""

    def __init__(self, bus: PostgresBus, worker: ClusterWorker | None) -> None:
        self.bus = bus
        self.worker = worker
        #: Executions running in some process, by the events seen: id -> status value.
        self._running: dict[str, str] = {}
        bus.observe(self._track)

    async def start(self, store: SqlStore) -> None:
        """Learn what already runs (started before this process); events do the rest."""
        for status in (ExecutionStatus.RUNNING, ExecutionStatus.PAUSED):
            offset = 0
            while True:
                page, total = await store.list_executions(status=status, limit=500, offset=offset)
                for execution in page:
                    self._running.setdefault(execution.id, status.value)
                offset += len(page)
                if not page or offset >= total:
                    break

    def submit(self, execution_id: str) -> None:
        """An execution was queued: wake a worker here and everywhere else."""
        if self.worker is not None:
            self.worker.submit(execution_id)
        self.bus.notify_work()

    def signal(self, execution_id: str, signal: ControlSignal) -> bool:
        """Deliver ``signal`` to the worker running ``execution_id``, wherever it is; False
        if no worker runs it."""
        if self.worker is not None and self.worker.signal(execution_id, signal):
            return True
        if self._running.get(execution_id) not in _RUNNING:
            return False
        self.bus.send_control(execution_id, signal.value)
        return True

    def _track(self, event: Event) -> None:
        if event.type is EventType.EXECUTION_STARTED:
            self._running[event.execution_id] = ExecutionStatus.RUNNING.value
        elif event.type is EventType.EXECUTION_FINISHED:
            self._running.pop(event.execution_id, None)
        elif event.type is EventType.EXECUTION_STATUS:
            status = event.data.get("status")
            if status in _RUNNING:
                self._running[event.execution_id] = str(status)
            else:
                self._running.pop(event.execution_id, None)
