"""Leases of the multi-node workers, on SQLite and PostgreSQL: takeover of expired leases
(never by two workers), renewal, and waking parked executions."""

from __future__ import annotations

import asyncio
import time

from runnel.model import ExecutionStatus, NodeRun, NodeStatus
from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.execution import ApprovalDecision
from runnel.store import SqlStore

from .conftest import NewExecution


async def _claimed(store: SqlStore, new_execution: NewExecution, lease: float) -> str:
    execution = await new_execution(enqueue=True)
    assert await store.claim("w-1", lease) == execution.id
    return execution.id


async def test_a_live_lease_is_renewed_and_never_taken_over(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution_id = await _claimed(store, new_execution, 30)
    assert await store.take_over("w-2", 30) is None
    assert await store.renew_leases("w-1", 30) == {execution_id}
    assert await store.renew_leases("w-2", 30) == set()


async def test_an_expired_lease_is_taken_over_once_and_counted(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution_id = await _claimed(store, new_execution, -1)
    # Several workers race for it: exactly one wins.
    taken = await asyncio.gather(*(store.take_over(f"w-{i}", 30) for i in range(2, 7)))
    winners = [t for t in taken if t is not None]
    assert winners == [(execution_id, 1)]
    # The first owner lost it: its heartbeat no longer holds it.
    assert await store.renew_leases("w-1", 30) == set()
    execution = await store.get_execution(execution_id)
    assert execution is not None and execution.status is ExecutionStatus.RUNNING


async def test_takeovers_accumulate(store: SqlStore, new_execution: NewExecution) -> None:
    execution_id = await _claimed(store, new_execution, -1)
    assert await store.take_over("w-2", -1) == (execution_id, 1)
    assert await store.take_over("w-3", -1) == (execution_id, 2)
    assert await store.take_over("w-4", 30) == (execution_id, 3)
    assert await store.take_over("w-5", 30) is None


async def test_finished_waiting_and_released_executions_are_not_taken_over(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution_id = await _claimed(store, new_execution, -1)
    assert await store.release(execution_id, "w-1")
    assert await store.take_over("w-2", 30) is None
    assert await store.claim("w-2", -1) == execution_id
    await store.save(
        Checkpoint(
            execution_id=execution_id,
            workflow_id="wf",
            execution=ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, finished_at=time.time()),
        )
    )
    assert await store.take_over("w-3", 30) is None
    assert await store.renew_leases("w-2", 30) == set()


async def _parked(store: SqlStore, new_execution: NewExecution, run: NodeRun) -> str:
    execution_id = await _claimed(store, new_execution, 30)
    await store.save(
        Checkpoint(
            execution_id=execution_id,
            workflow_id="wf",
            node_runs=(_for(run, execution_id),),
            execution=ExecutionUpdate(status=ExecutionStatus.WAITING),
        )
    )
    return execution_id


def _for(run: NodeRun, execution_id: str) -> NodeRun:
    return NodeRun(
        execution_id,
        run.node_id,
        run.status,
        attempt=run.attempt,
        wait=run.wait,
        started_at=run.started_at,
    )


async def test_due_timers_and_decided_approvals_wake_up(
    store: SqlStore, new_execution: NewExecution
) -> None:
    now = time.time()
    due = await _parked(
        store,
        new_execution,
        NodeRun("", "a", NodeStatus.WAITING, wait={"kind": "timer", "due_at": now - 1}),
    )
    later = await _parked(
        store,
        new_execution,
        NodeRun("", "a", NodeStatus.WAITING, wait={"kind": "timer", "due_at": now + 3600}),
    )
    approval = await _parked(
        store, new_execution, NodeRun("", "a", NodeStatus.WAITING, wait={"kind": "approval"})
    )
    assert await store.wake_waiting() == [due]
    assert await store.wake_waiting() == []
    decision = ApprovalDecision(approved=True, by="me", comment=None, at=now)
    assert await store.record_decision(approval, "a", decision)
    assert await store.wake_waiting() == [approval]
    statuses = {
        execution_id: (await store.get_execution(execution_id)).status  # type: ignore[union-attr]
        for execution_id in (due, later, approval)
    }
    assert statuses == {
        due: ExecutionStatus.QUEUED,
        later: ExecutionStatus.WAITING,
        approval: ExecutionStatus.QUEUED,
    }
    # Woken executions are claimable like any queued one.
    assert {await store.claim("w-9", 30), await store.claim("w-9", 30)} == {due, approval}
