"""Model values to table rows (parameter dicts) and back.

JSON columns go through ``runnel.store.codec``. These run on the hot path (every
checkpoint), so they build plain dicts directly, without intermediate objects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from runnel.model.checkpoint import ExecutionUpdate
from runnel.model.events import Event, EventType
from runnel.model.execution import (
    Execution,
    ExecutionMode,
    ExecutionStatus,
    NodeRun,
    NodeStatus,
)
from runnel.store.codec import (
    decision_from_dict,
    decision_to_dict,
    dumps,
    dumps_or_none,
    loads,
    loads_or_none,
    node_error_from_dict,
    node_error_to_dict,
)

__all__ = [
    "event_from_row",
    "event_row",
    "execution_from_row",
    "execution_row",
    "execution_update_row",
    "node_run_from_row",
    "node_run_row",
]


def execution_row(
    execution: Execution, *, created_at: float, queued_at: float | None
) -> dict[str, Any]:
    return {
        "id": execution.id,
        "workflow_id": execution.workflow_id,
        "workflow_version": execution.workflow_version,
        "status": execution.status.value,
        "mode": execution.mode.value,
        "trigger": execution.trigger,
        "inputs": dumps(execution.inputs),
        "outputs": dumps_or_none(execution.outputs),
        "error": None if execution.error is None else dumps(node_error_to_dict(execution.error)),
        "parent_id": execution.parent_id,
        "attempt": execution.attempt,
        "created_at": created_at,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "queued_at": queued_at,
    }


def execution_from_row(row: Row[Any]) -> Execution:
    error = loads_or_none(row.error)
    return Execution(
        id=row.id,
        workflow_id=row.workflow_id,
        workflow_version=row.workflow_version,
        status=ExecutionStatus(row.status),
        mode=ExecutionMode(row.mode),
        inputs=loads(row.inputs),
        outputs=loads_or_none(row.outputs),
        error=None if error is None else node_error_from_dict(error),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        parent_id=row.parent_id,
        trigger=row.trigger,
        attempt=row.attempt,
    )


def execution_update_row(
    execution_id: str, update: ExecutionUpdate, next_seq: int
) -> dict[str, Any]:
    """Parameters of ``UPDATE_EXECUTION``: ``None`` leaves a column as it is."""
    return {
        "id": execution_id,
        "status": update.status.value,
        "started_at": update.started_at,
        "finished_at": update.finished_at,
        "error": None if update.error is None else dumps(node_error_to_dict(update.error)),
        "outputs": dumps_or_none(update.outputs),
        "next_seq": next_seq,
    }


def node_run_row(run: NodeRun) -> dict[str, Any]:
    return {
        "execution_id": run.execution_id,
        "node_id": run.node_id,
        "status": run.status.value,
        "attempt": run.attempt,
        "inputs": dumps_or_none(run.inputs),
        "outputs": dumps_or_none(run.outputs),
        "error": None if run.error is None else dumps(node_error_to_dict(run.error)),
        "wait": dumps_or_none(run.wait),
        "decision": None if run.decision is None else dumps(decision_to_dict(run.decision)),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def node_run_from_row(row: Row[Any]) -> NodeRun:
    error = loads_or_none(row.error)
    decision = loads_or_none(row.decision)
    return NodeRun(
        execution_id=row.execution_id,
        node_id=row.node_id,
        status=NodeStatus(row.status),
        attempt=row.attempt,
        inputs=loads_or_none(row.inputs),
        outputs=loads_or_none(row.outputs),
        error=None if error is None else node_error_from_dict(error),
        started_at=row.started_at,
        finished_at=row.finished_at,
        wait=loads_or_none(row.wait),
        decision=None if decision is None else decision_from_dict(decision),
    )


def event_row(event: Event) -> dict[str, Any]:
    return {
        "execution_id": event.execution_id,
        "seq": event.seq,
        "type": event.type.value,
        "node_id": event.node_id,
        "timestamp": event.timestamp,
        "data": dumps(event.data),
    }


def event_from_row(execution_id: str, row: Row[Any]) -> Event:
    return Event(
        execution_id=execution_id,
        seq=row.seq,
        type=EventType(row.type),
        timestamp=row.timestamp,
        workflow_id=row.workflow_id,
        node_id=row.node_id,
        data=loads(row.data),
    )
