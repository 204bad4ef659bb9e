"""Checkpoints: a node's result, its events and the execution's status commit together."""

from __future__ import annotations

import asyncio
import time

import pytest

from runnel.engine.ports import Checkpoint, ExecutionUpdate
from runnel.model import (
    ApprovalDecision,
    EventType,
    Execution,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.store import ConflictError, ExecutionNotFound, SqlStore

from .conftest import NewExecution
from .helpers import event, node_checkpoint, running, simple_workflow


async def test_a_checkpoint_is_stored_whole(store: SqlStore, new_execution: NewExecution) -> None:
    await new_execution("x")
    started = time.time()
    await store.save(
        node_checkpoint("x", "a", 1, outputs={"body": b"\x00\x01"}, execution=running(started))
    )

    (run,) = await store.node_runs("x")
    assert (run.node_id, run.status, run.outputs) == (
        "a",
        NodeStatus.SUCCEEDED,
        {"body": b"\x00\x01"},
    )
    (stored,) = await store.events("x")
    assert (stored.seq, stored.type, stored.workflow_id) == (1, EventType.NODE_FINISHED, "wf")
    execution = await store.get_execution("x")
    assert execution is not None
    assert (execution.status, execution.started_at) == (ExecutionStatus.RUNNING, started)


async def test_the_final_checkpoint_sets_outputs_and_error(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    await store.save(node_checkpoint("x", "a", 1, execution=running(100.0)))
    final = ExecutionUpdate(
        status=ExecutionStatus.FAILED,
        finished_at=101.5,
        error=NodeError(message="b failed", kind="node", details={"node_id": "b"}),
        outputs={"a": {"value": b"bytes out"}},
    )
    await store.save(Checkpoint("x", "wf", events=(event("x", 2),), execution=final, final=True))

    execution = await store.get_execution("x")
    assert execution is not None
    assert execution.status is ExecutionStatus.FAILED
    # Fields the final update left out keep what earlier checkpoints wrote.
    assert (execution.started_at, execution.finished_at) == (100.0, 101.5)
    assert execution.error == final.error
    assert execution.outputs == {"a": {"value": b"bytes out"}}
    assert execution.duration_ms == pytest.approx(1500.0)


async def test_node_runs_keep_their_latest_state(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    start = NodeRun("x", "a", NodeStatus.RUNNING, attempt=1, inputs={"value": 1}, started_at=1.0)
    await store.save(Checkpoint("x", "wf", node_runs=(start,)))
    assert await store.node_runs("x") == [start]
    failed = NodeRun(
        "x",
        "a",
        NodeStatus.FAILED,
        attempt=2,
        error=NodeError("timeout", kind="timeout"),
        started_at=2.0,
        finished_at=3.0,
    )
    await store.save(Checkpoint("x", "wf", node_runs=(failed,)))
    assert await store.node_runs("x") == [failed]


async def test_readers_never_see_half_a_checkpoint(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    nodes = 60
    done = asyncio.Event()
    torn: list[str] = []

    async def watch() -> None:
        while not done.is_set():
            runs = await store.node_runs("x")
            events = await store.events("x")
            # Node runs are read first: every node seen must already have its event.
            evented = {e.node_id for e in events}
            torn.extend(run.node_id for run in runs if run.node_id not in evented)

    async def write() -> None:
        for seq in range(1, nodes + 1):
            await store.save(node_checkpoint("x", f"n{seq}", seq))
        done.set()

    await asyncio.gather(watch(), watch(), write())
    assert torn == []
    assert len(await store.node_runs("x")) == nodes


async def test_a_failing_checkpoint_writes_nothing(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    await store.save(node_checkpoint("x", "a", 1, execution=running()))
    # seq 1 again: the event insert fails, so the node run and status must not change.
    bad = node_checkpoint(
        "x",
        "b",
        1,
        execution=ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, finished_at=time.time()),
    )
    with pytest.raises(ConflictError):
        await store.save(bad)
    assert [run.node_id for run in await store.node_runs("x")] == ["a"]
    assert [e.seq for e in await store.events("x")] == [1]
    execution = await store.get_execution("x")
    assert execution is not None
    assert execution.status is ExecutionStatus.RUNNING


async def test_a_checkpoint_for_an_unknown_execution_fails(store: SqlStore) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.save(node_checkpoint("ghost", "a", 1))
    with pytest.raises(ExecutionNotFound):
        await store.save(Checkpoint("ghost", "wf", execution=running()))
    with pytest.raises(ExecutionNotFound):
        await store.resume_state("ghost")


async def test_resume_state(store: SqlStore, new_execution: NewExecution) -> None:
    await new_execution("x")
    fresh = await store.resume_state("x")
    assert (dict(fresh.node_runs), fresh.next_seq, fresh.started_at) == ({}, 1, None)

    await store.save(node_checkpoint("x", "a", 1, execution=running(50.0)))
    waiting = NodeRun(
        "x", "b", NodeStatus.WAITING, attempt=1, wait={"kind": "approval"}, started_at=51.0
    )
    await store.save(
        Checkpoint(
            "x",
            "wf",
            node_runs=(waiting,),
            events=(event("x", 2, "b"), event("x", 3)),
            execution=ExecutionUpdate(status=ExecutionStatus.WAITING),
        )
    )
    state = await store.resume_state("x")
    assert state.next_seq == 4
    assert state.started_at == 50.0
    assert set(state.node_runs) == {"a", "b"}
    assert state.node_runs["b"] == waiting


async def test_decisions_first_one_wins_and_checkpoints_keep_it(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    assert not await store.record_decision("x", "b", ApprovalDecision(approved=True))  # no run

    waiting = NodeRun("x", "b", NodeStatus.WAITING, attempt=1, wait={"kind": "approval"})
    await store.save(Checkpoint("x", "wf", node_runs=(waiting,)))
    approve = ApprovalDecision(approved=True, by="alice", comment="ok", at=5.0)
    assert await store.record_decision("x", "b", approve)
    assert not await store.record_decision("x", "b", ApprovalDecision(approved=False, by="eve"))
    assert (await store.resume_state("x")).node_runs["b"].decision == approve

    # The resumed node finishes; its checkpoint without a decision does not erase it.
    await store.save(
        Checkpoint("x", "wf", node_runs=(NodeRun("x", "b", NodeStatus.SUCCEEDED, attempt=1),))
    )
    (run,) = await store.node_runs("x")
    assert (run.status, run.decision) == (NodeStatus.SUCCEEDED, approve)
    assert not await store.record_decision("x", "b", approve)  # not waiting any more


async def test_a_discarded_execution_leaves_no_rows(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    await new_execution("y")
    await store.save(node_checkpoint("x", "a", 1, execution=running()))
    await store.save(node_checkpoint("y", "a", 1, execution=running()))
    # The discard and a write of the same execution in one group commit: both go.
    writes = store.submit(node_checkpoint("x", "b", 2))
    gone = store.submit(Checkpoint("x", "wf", final=True, discard=True))
    await asyncio.gather(writes, gone)
    assert await store.get_execution("x") is None
    assert await store.node_runs("x") == [] and await store.events("x") == []
    # Another execution is untouched.
    assert len(await store.node_runs("y")) == 1 and len(await store.events("y")) == 1


async def test_the_first_checkpoint_may_create_the_execution(store: SqlStore) -> None:
    workflow = await store.save_workflow(simple_workflow())
    created = Execution("x", workflow.id, workflow.version, status=ExecutionStatus.RUNNING)
    first = node_checkpoint("x", "a", 1, execution=running(100.0))
    await store.submit(
        Checkpoint(
            "x",
            "wf",
            create=created,
            node_runs=first.node_runs,
            events=first.events,
            execution=first.execution,
        )
    )
    execution = await store.get_execution("x")
    assert execution is not None
    assert (execution.status, execution.started_at) == (ExecutionStatus.RUNNING, 100.0)
    assert [run.node_id for run in await store.node_runs("x")] == ["a"]


async def test_submit_fails_like_save_for_an_unknown_execution(store: SqlStore) -> None:
    with pytest.raises(ExecutionNotFound):
        await store.submit(Checkpoint("nope", "wf", execution=running()))
