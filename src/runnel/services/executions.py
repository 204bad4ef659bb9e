"""Execution use cases: start, run and wait, read history, cancel, pause, resume, approve."""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runnel.bus import Bus, Lagged, Subscription
from runnel.engine.control import ControlSignal
from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.events import Event, EventType
from runnel.model.execution import (
    ApprovalDecision,
    Execution,
    ExecutionMode,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.services.dispatch import Dispatcher
from runnel.services.errors import Conflict, NotFound
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore

__all__ = ["ExecutionReport", "ExecutionService"]

#: Statuses at which a caller waiting for "the end" of a run gets its answer.
_SETTLED = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.WAITING,
    }
)


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """An execution with the latest run of each of its nodes."""

    execution: Execution
    node_runs: list[NodeRun]
    total_nodes: int

    @property
    def completed_nodes(self) -> int:
        return sum(1 for run in self.node_runs if run.status is NodeStatus.SUCCEEDED)


class ExecutionService:
    def __init__(
        self,
        store: SqlStore,
        bus: Bus,
        workflows: WorkflowService,
        dispatcher: Dispatcher,
        *,
        clock: Any = time.time,
    ) -> None:
        self.store = store
        self.bus = bus
        self.workflows = workflows
        self.dispatcher = dispatcher
        self.clock = clock

    async def start(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any],
        *,
        version: int | None = None,
        mode: ExecutionMode = ExecutionMode.EXECUTE,
        trigger: str = "api",
        execution_id: str | None = None,
    ) -> Execution:
        """Queue an execution of ``workflow_id`` (its latest version unless ``version``)."""
        workflow = await self.workflows.get(workflow_id, version)
        execution = Execution(
            id=execution_id or str(uuid.uuid4()),
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            status=ExecutionStatus.QUEUED,
            mode=mode,
            inputs=dict(inputs),
            created_at=self.clock(),
            trigger=trigger,
        )
        await self.store.create_execution(execution, enqueue=True)
        self.dispatcher.submit(execution.id)
        return execution

    async def run(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any],
        *,
        version: int | None = None,
        mode: ExecutionMode = ExecutionMode.EXECUTE,
        trigger: str = "api",
    ) -> ExecutionReport:
        """Start an execution and wait until it finished or waits for someone.

        Bound the wait with ``asyncio.timeout`` around the call."""
        execution_id = str(uuid.uuid4())
        # Subscribe before starting, so that no event can slip between the two.
        subscription = self.bus.subscribe(execution_id=execution_id)
        try:
            await self.start(
                workflow_id,
                inputs,
                version=version,
                mode=mode,
                trigger=trigger,
                execution_id=execution_id,
            )
            await self._settled(subscription, execution_id)
        finally:
            subscription.close()
        return await self.get(execution_id)

    async def wait(self, execution_id: str) -> ExecutionReport:
        """Wait until ``execution_id`` finished or waits for someone."""
        subscription = self.bus.subscribe(execution_id=execution_id)
        try:
            await self._settled(subscription, execution_id)
        finally:
            subscription.close()
        return await self.get(execution_id)

    async def _settled(self, subscription: Subscription, execution_id: str) -> None:
        execution = await self.store.get_execution(execution_id)
        if execution is None:
            raise NotFound("execution", execution_id)
        if execution.status in _SETTLED:
            return
        async for item in subscription:
            if isinstance(item, Lagged):
                # Events were missed: the store knows the status.
                execution = await self.store.get_execution(execution_id)
                if execution is not None and execution.status in _SETTLED:
                    return
                continue
            if _settles(item):
                return

    async def get(self, execution_id: str) -> ExecutionReport:
        execution = await self.store.get_execution(execution_id)
        if execution is None:
            raise NotFound("execution", execution_id)
        node_runs = await self.store.node_runs(execution_id)
        workflow = await self.store.get_workflow(
            execution.workflow_id, execution.workflow_version, include_deleted=True
        )
        total = len(workflow.nodes) if workflow is not None else len(node_runs)
        return ExecutionReport(execution, node_runs, total)

    async def list(
        self,
        *,
        workflow_id: str | None = None,
        status: ExecutionStatus | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Execution], int]:
        return await self.store.list_executions(
            workflow_id=workflow_id,
            status=status,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )

    async def events(
        self, execution_id: str, after_seq: int = 0, limit: int | None = None
    ) -> builtins.list[Event]:
        if await self.store.get_execution(execution_id) is None:
            raise NotFound("execution", execution_id)
        return await self.store.events(execution_id, after_seq=after_seq, limit=limit)

    async def cancel(self, execution_id: str, reason: str = "cancelled") -> Execution:
        """Cancel a queued, running, paused or waiting execution."""
        execution = await self._existing(execution_id)
        if execution.status.finished:
            raise Conflict(f"Execution {execution_id} already {execution.status.value}")
        if self.dispatcher.signal(execution_id, ControlSignal.CANCEL):
            await self.wait(execution_id)
        else:
            await self._end_outside_worker(
                execution, NodeError(reason, kind="cancelled"), ExecutionStatus.CANCELLED
            )
        return await self._existing(execution_id)

    async def pause(self, execution_id: str) -> Execution:
        await self._signal_running(execution_id, ControlSignal.PAUSE)
        return await self._existing(execution_id)

    async def resume(self, execution_id: str) -> Execution:
        await self._signal_running(execution_id, ControlSignal.RESUME)
        return await self._existing(execution_id)

    async def approve(
        self,
        execution_id: str,
        node_id: str,
        approved: bool,
        *,
        by: str | None = None,
        comment: str | None = None,
    ) -> Execution:
        """Decide a waiting approval; the execution goes on (approved) or fails there."""
        await self._existing(execution_id)
        decision = ApprovalDecision(approved=approved, by=by, comment=comment, at=self.clock())
        if not await self.store.record_decision(execution_id, node_id, decision):
            raise Conflict(
                f"Node {node_id} of execution {execution_id} is not waiting for approval"
            )
        if await self.store.enqueue(execution_id):
            self.dispatcher.submit(execution_id)
        return await self._existing(execution_id)

    async def fail_stranded(self, execution_id: str, message: str) -> None:
        """End an execution whose run broke outside any node (an internal error)."""
        execution = await self.store.get_execution(execution_id)
        if execution is not None and not execution.status.finished:
            await self._end_outside_worker(
                execution, NodeError(message, kind="internal"), ExecutionStatus.FAILED
            )

    async def _signal_running(self, execution_id: str, signal: ControlSignal) -> None:
        execution = await self._existing(execution_id)
        if not self.dispatcher.signal(execution_id, signal):
            raise Conflict(
                f"Execution {execution_id} is {execution.status.value}, not running here"
            )

    async def _existing(self, execution_id: str) -> Execution:
        execution = await self.store.get_execution(execution_id)
        if execution is None:
            raise NotFound("execution", execution_id)
        return execution

    async def _end_outside_worker(
        self, execution: Execution, error: NodeError, status: ExecutionStatus
    ) -> None:
        """End an execution no worker is running (queued, waiting, parked)."""
        resume = await self.store.resume_state(execution.id)
        now = self.clock()
        event = Event(
            execution_id=execution.id,
            seq=resume.next_seq,
            type=EventType.EXECUTION_FINISHED,
            timestamp=now,
            workflow_id=execution.workflow_id,
            data={
                "status": status.value,
                "duration_ms": (now - (execution.started_at or now)) * 1000.0,
                "error": error.as_dict(),
                "outputs": {},
            },
        )
        await self.store.save(
            Checkpoint(
                execution_id=execution.id,
                workflow_id=execution.workflow_id,
                events=(event,),
                execution=ExecutionUpdate(status=status, finished_at=now, error=error),
                final=True,
            )
        )
        self.bus.publish(event)


def _settles(event: Event) -> bool:
    if event.type is EventType.EXECUTION_FINISHED:
        return True
    return (
        event.type is EventType.EXECUTION_STATUS
        and event.data.get("status") == ExecutionStatus.WAITING.value
    )
