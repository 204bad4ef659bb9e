"""Executions: creation, lookup, history lists with filters and pages, ordered events."""

from __future__ import annotations

import pytest

from runnel.engine.ports import Checkpoint
from runnel.model import Execution, ExecutionMode, ExecutionStatus, NodeError
from runnel.store import ConflictError, SqlStore

from .conftest import NewExecution
from .helpers import event, simple_workflow


async def test_an_execution_comes_back_as_created(
    store: SqlStore, new_execution: NewExecution
) -> None:
    created = await new_execution(
        "x",
        status=ExecutionStatus.RUNNING,
        mode=ExecutionMode.SIMULATE,
        inputs={"url": "https://example.org", "raw": b"\x00"},
        outputs={"end": {"value": 1}},
        error=NodeError("old"),
        started_at=10.0,
        parent_id="parent",
        trigger="webhook",
        attempt=2,
    )
    assert created.created_at is not None
    assert await store.get_execution("x") == created
    assert await store.get_execution("nope") is None


async def test_created_at_is_kept_when_given(store: SqlStore, new_execution: NewExecution) -> None:
    created = await new_execution("x", created_at=1234.5)
    assert created.created_at == 1234.5
    assert (await store.get_execution("x")) == created


async def test_a_duplicate_id_is_a_conflict(store: SqlStore, new_execution: NewExecution) -> None:
    first = await new_execution("x")
    with pytest.raises(ConflictError):
        await new_execution("x", inputs={"other": True})
    assert await store.get_execution("x") == first


async def test_events_are_ordered_and_resumable(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")
    await new_execution("y")
    # Saved out of order and across checkpoints, and interleaved with another execution.
    await store.save(Checkpoint("x", "wf", events=(event("x", 3, "a", n=3), event("x", 1, n=1))))
    await store.save(Checkpoint("y", "wf", events=(event("y", 1),)))
    await store.save(Checkpoint("x", "wf", events=(event("x", 2, "b", n=2, raw=b"\x01"),)))

    events = await store.events("x")
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert events[1].data["raw"] == b"\x01"
    assert {e.execution_id for e in events} == {"x"}
    assert {e.workflow_id for e in events} == {"wf"}
    assert [e.node_id for e in events] == [None, "b", "a"]

    assert [e.seq for e in await store.events("x", after_seq=1)] == [2, 3]
    assert [e.seq for e in await store.events("x", after_seq=3)] == []
    assert [e.seq for e in await store.events("x", limit=2)] == [1, 2]
    assert [e.seq for e in await store.events("x", after_seq=1, limit=1)] == [2]
    assert await store.events("nope") == []


async def test_list_filters_and_pages(store: SqlStore, new_execution: NewExecution) -> None:
    # Ten executions of two workflows, created one second apart, alternating statuses.
    for i in range(10):
        await new_execution(
            f"x{i}",
            workflow_id="even" if i % 2 == 0 else "odd",
            status=ExecutionStatus.FAILED if i % 3 == 0 else ExecutionStatus.SUCCEEDED,
            created_at=1000.0 + i,
        )

    rows, total = await store.list_executions()
    assert total == 10
    assert [r.id for r in rows] == [f"x{i}" for i in reversed(range(10))]  # newest first

    rows, total = await store.list_executions(workflow_id="even")
    assert (total, [r.id for r in rows]) == (5, ["x8", "x6", "x4", "x2", "x0"])

    rows, total = await store.list_executions(status=ExecutionStatus.FAILED)
    assert (total, [r.id for r in rows]) == (4, ["x9", "x6", "x3", "x0"])

    rows, total = await store.list_executions(since=1003.0, until=1006.0)
    assert (total, [r.id for r in rows]) == (3, ["x5", "x4", "x3"])

    rows, total = await store.list_executions(
        workflow_id="even", status=ExecutionStatus.FAILED, since=1001.0
    )
    assert (total, [r.id for r in rows]) == (1, ["x6"])

    pages = [await store.list_executions(limit=4, offset=offset) for offset in (0, 4, 8, 12)]
    assert [[r.id for r in rows] for rows, _ in pages] == [
        ["x9", "x8", "x7", "x6"],
        ["x5", "x4", "x3", "x2"],
        ["x1", "x0"],
        [],
    ]
    assert {total for _, total in pages} == {10}

    rows, total = await store.list_executions(workflow_id="none")
    assert (rows, total) == ([], 0)
    with pytest.raises(ValueError, match="negative"):
        await store.list_executions(limit=-1)


async def test_executions_of_a_version_stay_linked(
    store: SqlStore, new_execution: NewExecution
) -> None:
    first = await new_execution("x")
    await store.save_workflow(simple_workflow("wf", description="v2"))
    second = await store.create_execution(Execution(id="y", workflow_id="wf", workflow_version=2))
    assert (first.workflow_version, second.workflow_version) == (1, 2)
    stored = await store.get_execution("x")
    assert stored is not None
    workflow = await store.get_workflow("wf", version=stored.workflow_version)
    assert workflow is not None
    assert workflow.description == ""
