"""Execution queries: the execution row, its node runs and its ordered events.

``checkpoint_ops`` is the hot path: it turns one checkpoint into rows for the group-commit
writer, which writes them (with other executions' rows) in one transaction.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.model.checkpoint import Checkpoint, ResumeState
from runnel.model.events import Event
from runnel.model.execution import ApprovalDecision, Execution, ExecutionStatus, NodeRun
from runnel.store.codec import decision_to_dict, dumps
from runnel.store.errors import ExecutionNotFound
from runnel.store.reading import Reader
from runnel.store.rows import (
    event_from_row,
    event_row,
    execution_from_row,
    execution_row,
    execution_update_row,
    node_run_from_row,
    node_run_row,
)
from runnel.store.statements import Statements
from runnel.store.writer import Op

__all__ = [
    "checkpoint_ops",
    "create_execution_ops",
    "get_execution",
    "list_events",
    "list_executions",
    "list_node_runs",
    "record_decision",
    "resume_state",
]


def create_execution_ops(
    sql: Statements, execution: Execution, *, created_at: float, queued_at: float | None
) -> list[Op]:
    row = execution_row(execution, created_at=created_at, queued_at=queued_at)
    return [Op(sql.insert_execution, (row,))]


def checkpoint_ops(sql: Statements, checkpoint: Checkpoint) -> list[Op]:
    """Rows of one checkpoint: node runs, events, and the execution row's update; or, for
    a discarded run (``Checkpoint.discard``), the deletion of all of them.

    A checkpoint for an unknown execution fails: node runs and events by their foreign
    key, an execution update by changing no row (``one_row_each``).
    """
    if checkpoint.discard:
        key = ({"id": checkpoint.execution_id},)
        return [
            Op(sql.delete_execution_events, key),
            Op(sql.delete_execution_node_runs, key),
            Op(sql.delete_execution, key),
        ]
    ops: list[Op] = []
    if checkpoint.create is not None:
        created = checkpoint.create
        created_at = created.created_at if created.created_at is not None else time.time()
        ops.extend(create_execution_ops(sql, created, created_at=created_at, queued_at=None))
    if checkpoint.node_runs:
        ops.append(Op(sql.upsert_node_run, [node_run_row(run) for run in checkpoint.node_runs]))
    next_seq = 0
    if checkpoint.events:
        ops.append(Op(sql.insert_event, [event_row(event) for event in checkpoint.events]))
        next_seq = max(event.seq for event in checkpoint.events) + 1
    if checkpoint.execution is not None:
        row = execution_update_row(checkpoint.execution_id, checkpoint.execution, next_seq)
        ops.append(Op(sql.update_execution, (row,)))
    # A checkpoint that leaves the status alone (most: a node's result and its events) does
    # not touch the execution row: ``resume_state`` finds the next seq from the events.
    return ops


def get_execution(connection: Reader, sql: Statements, execution_id: str) -> Execution | None:
    row = connection.exec_driver_sql(sql.select_execution.sql, {"id": execution_id}).first()
    return None if row is None else execution_from_row(row)


def list_executions(
    connection: Reader,
    sql: Statements,
    *,
    workflow_id: str | None,
    status: ExecutionStatus | None,
    since: float | None,
    until: float | None,
    limit: int,
    offset: int,
) -> tuple[list[Execution], int]:
    """One page, newest first, and the number of executions matching in all."""
    filters: dict[str, Any] = {}
    if workflow_id is not None:
        filters["workflow_id"] = workflow_id
    if status is not None:
        filters["status"] = status.value
    if since is not None:
        filters["since"] = since
    if until is not None:
        filters["until"] = until
    page, count = sql.list_executions(frozenset(filters))
    rows = connection.exec_driver_sql(page.sql, {**filters, "limit": limit, "offset": offset}).all()
    total: int = connection.exec_driver_sql(count.sql, filters).scalar_one()
    return [execution_from_row(row) for row in rows], total


def list_node_runs(connection: Reader, sql: Statements, execution_id: str) -> list[NodeRun]:
    rows = connection.exec_driver_sql(
        sql.select_node_runs.sql, {"execution_id": execution_id}
    ).all()
    return [node_run_from_row(row) for row in rows]


def list_events(
    connection: Reader,
    sql: Statements,
    execution_id: str,
    after_seq: int,
    limit: int | None,
) -> list[Event]:
    params: dict[str, Any] = {"execution_id": execution_id, "after_seq": after_seq}
    statement = sql.select_events
    if limit is not None:
        statement = sql.select_events_limited
        params["limit"] = limit
    rows = connection.exec_driver_sql(statement.sql, params).all()
    return [event_from_row(execution_id, row) for row in rows]


def resume_state(connection: Reader, sql: Statements, execution_id: str) -> ResumeState:
    """What a worker needs to continue ``execution_id`` from its last checkpoint."""
    head = connection.exec_driver_sql(sql.select_resume.sql, {"id": execution_id}).first()
    if head is None:
        raise ExecutionNotFound(execution_id)
    runs = list_node_runs(connection, sql, execution_id)
    # Both should agree; the larger one is safe even if a checkpoint wrote events only.
    next_seq = max(head.next_seq, (head.max_seq or 0) + 1)
    return ResumeState(
        node_runs={run.node_id: run for run in runs},
        next_seq=next_seq,
        started_at=head.started_at,
    )


def record_decision(
    cursor: DBAPICursor,
    sql: Statements,
    execution_id: str,
    node_id: str,
    decision: ApprovalDecision,
) -> bool:
    cursor.execute(
        sql.record_decision.sql,
        {
            "execution_id": execution_id,
            "node_id": node_id,
            "decision": dumps(decision_to_dict(decision)),
        },
    )
    return cursor.rowcount == 1
