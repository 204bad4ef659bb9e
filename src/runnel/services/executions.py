"""Execution use cases: start, run and wait, read history, cancel, pause, resume, approve.

``run`` (start and wait: webhooks, execute) runs the execution at once in this process when
the dispatcher can (``InlineDispatcher``: the embedded worker) and answers from the run's
result, reading nothing back; otherwise it queues the execution and waits for its end on the
bus. A workflow whose ``settings.save_history`` keeps no history of a run leaves no rows once
it ended (``runnel.engine.executor.keeps_history``); the answer is the same.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runnel.bus import Bus, Lagged, Subscription
from runnel.engine.control import ControlSignal
from runnel.engine.executor import keeps_history
from runnel.engine.run import ExecutionResult, RunRequest
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
from runnel.model.workflow import Workflow
from runnel.services.dispatch import Dispatcher, InlineDispatcher, RunInterrupted
from runnel.services.errors import Conflict, NotFound
from runnel.services.workflows import WorkflowService
from runnel.store import SqlStore
from runnel.store.codec import node_error_from_dict

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
        self._inline = dispatcher if isinstance(dispatcher, InlineDispatcher) else None

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
        workflow: Workflow | None = None,
    ) -> ExecutionReport:
        """Start an execution and wait until it finished or waits for someone.

        ``workflow``: the version to run, already loaded (else ``workflow_id`` and
        ``version`` are looked up). Bound the wait with ``asyncio.timeout`` around the call
        (an execution run in this process goes on after it)."""
        execution_id = str(uuid.uuid4())
        if self._inline is not None:
            if workflow is None:
                workflow = await self.workflows.get(workflow_id, version)
            execution = Execution(
                id=execution_id,
                workflow_id=workflow.id,
                workflow_version=workflow.version,
                status=ExecutionStatus.RUNNING,
                mode=mode,
                inputs=dict(inputs),
                created_at=self.clock(),
                trigger=trigger,
            )
            try:
                result = await self._inline.run_now(
                    RunRequest(
                        execution_id=execution_id,
                        workflow=workflow,
                        inputs=execution.inputs,
                        mode=mode,
                        create=execution,
                        history_in_memory=True,
                    )
                )
            except RunInterrupted:
                # Shutting down: the store tells how far it got (nothing, if it was never
                # written: it is still running as far as this caller knows).
                try:
                    return await self.get(execution_id)
                except NotFound:
                    return ExecutionReport(execution, [], len(workflow.nodes))
            if result is not None:
                return _report_of(execution, result)
        elif workflow is not None:
            workflow_id, version = workflow.id, workflow.version
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
            seen, last, runs = await self._settled(subscription, execution_id)
        finally:
            subscription.close()
        return await self._report_after(seen, last, runs)

    async def wait(self, execution_id: str) -> ExecutionReport:
        """Wait until ``execution_id`` finished or waits for someone."""
        subscription = self.bus.subscribe(execution_id=execution_id)
        try:
            seen, last, runs = await self._settled(subscription, execution_id)
        finally:
            subscription.close()
        return await self._report_after(seen, last, runs)

    async def _report_after(
        self, seen: Execution, last: Event | None, runs: Mapping[str, NodeRun]
    ) -> ExecutionReport:
        try:
            return await self.get(seen.id)
        except NotFound:
            # Ended without history (settings.save_history): its events tell the end.
            if last is None or last.type is not EventType.EXECUTION_FINISHED:
                raise
            try:
                workflow = await self.workflows.get(seen.workflow_id, seen.workflow_version)
                total = len(workflow.nodes)
            except NotFound:
                total = len(runs)
            return _report_of_event(seen, last, runs, total)

    async def _settled(
        self, subscription: Subscription, execution_id: str, running: Execution | None = None
    ) -> tuple[Execution, Event | None, dict[str, NodeRun]]:
        """Wait for the execution to end or wait: the execution as first read, the event
        that told its end (if one did), and the node runs its events told of (for a run
        that keeps no history). ``running``: the execution as known while it runs, for one
        held in memory (nothing stored yet)."""
        execution = await self.store.get_execution(execution_id)
        runs: dict[str, NodeRun] = {}
        if execution is None:
            if running is None:
                raise NotFound("execution", execution_id)
            seen = running
        else:
            seen = execution
            if execution.status in _SETTLED:
                return seen, None, runs
        async for item in subscription:
            if isinstance(item, Lagged):
                # Events were missed: the store knows the status.
                execution = await self.store.get_execution(execution_id)
                if execution is not None and execution.status in _SETTLED:
                    return seen, None, runs
                if execution is None and running is None:
                    return seen, None, runs
                continue
            if item.type is EventType.NODE_FINISHED and item.node_id is not None:
                runs[item.node_id] = _node_run_of(item)
            if _settles(item):
                return seen, item, runs
        return seen, None, runs

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
        # Subscribe before signalling: a run held in memory leaves only its events.
        subscription = self.bus.subscribe(execution_id=execution_id)
        try:
            if self.dispatcher.signal(execution_id, ControlSignal.CANCEL):
                seen, last, runs = await self._settled(subscription, execution_id, execution)
                ended = (await self._report_after(seen, last, runs)).execution
            elif await self.store.get_execution(execution_id) is None:
                raise Conflict(f"Execution {execution_id} already ended")
            else:
                ended = await self._end_outside_worker(
                    execution, NodeError(reason, kind="cancelled"), ExecutionStatus.CANCELLED
                )
        finally:
            subscription.close()
        # Without history (settings.save_history) nothing is left to read.
        return await self.store.get_execution(execution_id) or ended

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
        """The stored execution, else the one this process runs without having written it
        yet (``InlineDispatcher.in_memory``), else ``NotFound``."""
        execution = await self.store.get_execution(execution_id)
        if execution is None and self._inline is not None:
            execution = self._inline.in_memory(execution_id)
        if execution is None:
            raise NotFound("execution", execution_id)
        return execution

    async def _end_outside_worker(
        self, execution: Execution, error: NodeError, status: ExecutionStatus
    ) -> Execution:
        """End an execution no worker is running (queued, waiting, parked)."""
        resume = await self.store.resume_state(execution.id)
        now = self.clock()
        workflow = await self.store.get_workflow(
            execution.workflow_id, execution.workflow_version, include_deleted=True
        )
        discard = workflow is not None and not keeps_history(workflow.settings.save_history, status)
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
                discard=discard,
            )
        )
        self.bus.publish(event)
        return dataclasses.replace(execution, status=status, error=error, finished_at=now)


def _report_of(execution: Execution, result: ExecutionResult) -> ExecutionReport:
    """The report of a run this process ran, from its result (the store is not read)."""
    ended = Execution(
        id=execution.id,
        workflow_id=execution.workflow_id,
        workflow_version=execution.workflow_version,
        status=result.status,
        mode=execution.mode,
        inputs=execution.inputs,
        outputs=result.outputs,
        error=result.error,
        created_at=execution.created_at,
        started_at=result.started_at,
        finished_at=result.finished_at,
        parent_id=execution.parent_id,
        trigger=execution.trigger,
        attempt=execution.attempt,
    )
    runs = sorted(
        result.node_runs.values(),
        key=lambda run: (run.started_at is None, run.started_at or 0.0, run.node_id),
    )
    return ExecutionReport(ended, runs, result.total_nodes)


def _node_run_of(event: Event) -> NodeRun:
    """A node's run as its ``node.finished`` event tells it."""
    data = event.data
    duration = data.get("duration_ms")
    started = event.timestamp - duration / 1000.0 if isinstance(duration, int | float) else None
    try:
        status = NodeStatus(data.get("status", NodeStatus.SUCCEEDED.value))
    except ValueError:
        status = NodeStatus.SUCCEEDED
    outputs = data.get("outputs")
    return NodeRun(
        execution_id=event.execution_id,
        node_id=event.node_id or "",
        status=status,
        attempt=int(data.get("attempt") or 0),
        outputs=outputs if isinstance(outputs, Mapping) else None,
        started_at=started,
        finished_at=event.timestamp,
    )


def _report_of_event(
    seen: Execution, event: Event, runs: Mapping[str, NodeRun], total: int
) -> ExecutionReport:
    """The report of a run that kept no history, from the execution as first read, its
    ``execution.finished`` event and the node runs its events told of."""
    data = event.data
    error = data.get("error")
    execution = dataclasses.replace(
        seen,
        status=ExecutionStatus(data.get("status", ExecutionStatus.SUCCEEDED.value)),
        outputs=data.get("outputs") or {},
        error=node_error_from_dict(error) if isinstance(error, Mapping) else None,
        finished_at=event.timestamp,
    )
    ordered = sorted(
        runs.values(), key=lambda run: (run.started_at is None, run.started_at or 0.0, run.node_id)
    )
    return ExecutionReport(execution, ordered, total)


def _settles(event: Event) -> bool:
    if event.type is EventType.EXECUTION_FINISHED:
        return not event.data.get("retrying")
    return (
        event.type is EventType.EXECUTION_STATUS
        and event.data.get("status") == ExecutionStatus.WAITING.value
    )
