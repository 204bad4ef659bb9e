"""The execution queue: ``queued_at`` marks a waiting execution; a claim takes the oldest.

Both run inside the group-commit writer's transaction. In one process, the writer alone
serialises claims; across PostgreSQL processes ``FOR UPDATE SKIP LOCKED`` does (see
``statements.CLAIM``). The multi-node workers renew their leases (``renew_leases``), take over
executions whose lease expired (``take_over``) and wake parked ones (``wake_waiting``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.model.execution import Execution
from runnel.store.rows import execution_from_row
from runnel.store.statements import Statements

__all__ = [
    "claim",
    "claim_many",
    "enqueue",
    "release",
    "renew_leases",
    "requeue_orphans",
    "take_over",
    "wake_waiting",
]


def enqueue(cursor: DBAPICursor, sql: Statements, execution_id: str, now: float) -> bool:
    """Put a queued, waiting or paused execution in the queue; False for any other."""
    cursor.execute(sql.enqueue.sql, {"id": execution_id, "now": now})
    return cursor.rowcount == 1


def claim(
    cursor: DBAPICursor, sql: Statements, worker_id: str, lease_expires_at: float
) -> str | None:
    """Mark the oldest queued execution running under ``worker_id``'s lease; its id."""
    cursor.execute(sql.claim.sql, {"worker_id": worker_id, "lease_expires_at": lease_expires_at})
    rows = cursor.fetchall()
    return str(rows[0][0]) if rows else None


class _ExecutionColumns(NamedTuple):
    """A raw row of ``statements.CLAIM_MANY``, readable by name as ``execution_from_row``
    reads it."""

    id: str
    workflow_id: str
    workflow_version: int
    status: str
    mode: str
    trigger: str
    inputs: str
    outputs: str | None
    error: str | None
    parent_id: str | None
    attempt: int
    created_at: float
    started_at: float | None
    finished_at: float | None


def claim_many(
    cursor: DBAPICursor, sql: Statements, worker_id: str, lease_expires_at: float, limit: int
) -> list[Execution]:
    """``claim`` up to ``limit`` executions at once, oldest first; each as stored now."""
    cursor.execute(
        sql.claim_many.sql,
        {"worker_id": worker_id, "lease_expires_at": lease_expires_at, "limit": limit},
    )
    claimed = [execution_from_row(cast(Any, _ExecutionColumns(*row))) for row in cursor.fetchall()]
    # RETURNING has no order: the oldest first, as they were queued (created, mostly).
    claimed.sort(key=_created)
    return claimed


def _created(execution: Execution) -> tuple[float, str]:
    return (execution.created_at or 0.0, execution.id)


def release(
    cursor: DBAPICursor, sql: Statements, execution_id: str, worker_id: str, now: float
) -> bool:
    """Put an execution ``worker_id`` runs back in the queue; False if it does not run it."""
    cursor.execute(sql.release.sql, {"id": execution_id, "worker_id": worker_id, "now": now})
    return cursor.rowcount == 1


def requeue_orphans(cursor: DBAPICursor, sql: Statements, now: float, any_owner: bool) -> int:
    """Queue again the running executions whose worker is gone; how many."""
    cursor.execute(sql.requeue_orphans.sql, {"now": now, "any_owner": any_owner})
    return max(int(cursor.rowcount), 0)


def take_over(
    cursor: DBAPICursor, sql: Statements, worker_id: str, lease_expires_at: float, now: float
) -> tuple[str, int] | None:
    """Take the running execution whose lease expired first: (its id, takeovers so far)."""
    cursor.execute(
        sql.take_over.sql,
        {"worker_id": worker_id, "lease_expires_at": lease_expires_at, "now": now},
    )
    rows = cursor.fetchall()
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def renew_leases(
    cursor: DBAPICursor, sql: Statements, worker_id: str, lease_expires_at: float
) -> set[str]:
    """Extend every lease ``worker_id`` holds; the ids of the executions it still holds."""
    cursor.execute(
        sql.renew_leases.sql, {"worker_id": worker_id, "lease_expires_at": lease_expires_at}
    )
    return {str(row[0]) for row in cursor.fetchall()}


def wake_waiting(cursor: DBAPICursor, sql: Statements, now: float) -> list[str]:
    """Queue the waiting executions whose timer is due or whose approval was decided."""
    cursor.execute(sql.wake_waiting.sql, {"now": now})
    return [str(row[0]) for row in cursor.fetchall()]
