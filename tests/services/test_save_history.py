"""``settings.save_history``: which runs keep their execution, node-run and event rows.

On a real SQLite store with the embedded worker: runs started and waited for (``run``: the
webhook and execute path, run at once in the worker) and runs queued (``start``: schedules,
``respond: immediately``, flow8 plays). On PostgreSQL (when ``RUNNEL_TEST_POSTGRES_URL`` is
set) the cluster worker writes such runs as they go and deletes them at their end.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbfixtures import BACKENDS, postgres_database
from runnel.model.events import Event, EventType
from runnel.model.execution import ExecutionStatus
from runnel.model.workflow import (
    Edge,
    Node,
    SaveHistory,
    Workflow,
    WorkflowOnError,
    WorkflowOnErrorKind,
    WorkflowSettings,
)
from runnel.platform import Platform, PlatformConfig
from runnel.services.errors import NotFound
from runnel.store.connect import create_store_engine
from runnel.store.migrate import migrate
from runnel.worker.embedded import EmbeddedWorker


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    for url in postgres_database():
        engine = create_store_engine(url, "admin")
        try:
            migrate(engine)
        finally:
            engine.dispose()
        yield url


@pytest.fixture
async def platform(tmp_path: Path, database_url: str | None) -> AsyncIterator[Platform]:
    platform = await Platform.open(PlatformConfig(data_dir=tmp_path, database_url=database_url))
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


def chain(workflow_id: str, history: SaveHistory, *nodes: Node, **settings: Any) -> Workflow:
    edges = tuple(
        Edge(f"e{i}", a.id, b.id, "approved" if a.type == "human.approval" else "value")
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    )
    return Workflow(
        id=workflow_id,
        name=workflow_id,
        nodes=nodes,
        edges=edges,
        settings=WorkflowSettings(save_history=history, **settings),
    )


def setter(node_id: str, **values: Any) -> Node:
    return Node(node_id, "transform.set", config={"values": values})


def failing(node_id: str) -> Node:
    return Node(
        node_id, "transform.set", config={"values": {"x": "{{ $input.value.missing.deeper }}"}}
    )


async def rows(platform: Platform, execution_id: str) -> tuple[bool, int, int]:
    """(execution row present, node runs, events) in the store."""
    store = platform.store
    present = await store.get_execution(execution_id) is not None
    return present, len(await store.node_runs(execution_id)), len(await store.events(execution_id))


class Live:
    """Every event the bus delivers for one workflow, as it happens."""

    def __init__(self, platform: Platform, workflow_id: str) -> None:
        self.subscription = platform.bus.subscribe(workflow_id=workflow_id)
        self.events: list[Event] = []

    async def until_finished(self) -> list[Event]:
        async with asyncio.timeout(10):
            async for item in self.subscription:
                assert isinstance(item, Event)
                self.events.append(item)
                if item.type is EventType.EXECUTION_FINISHED:
                    return self.events
        raise AssertionError("the bus closed")


@pytest.mark.parametrize("history", [SaveHistory.NONE, SaveHistory.FAILED])
async def test_a_successful_run_without_history_leaves_no_rows(
    platform: Platform, history: SaveHistory
) -> None:
    await platform.workflows.create(chain("wf", history, setter("a", n=1), setter("b", seen=True)))
    live = Live(platform, "wf")
    report = await platform.executions.run("wf", {"x": 0})
    # The answer is whole: status, outputs, node runs.
    assert report.execution.status is ExecutionStatus.SUCCEEDED
    assert report.execution.outputs == {"b": {"value": {"x": 0, "n": 1, "seen": True}}}
    assert report.completed_nodes == 2 and report.total_nodes == 2
    # The events still streamed live, in order, ending with the finish.
    events = await live.until_finished()
    assert events[0].type is EventType.EXECUTION_STARTED
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].data["outputs"] == {"b": {"value": {"x": 0, "n": 1, "seen": True}}}
    # Nothing of it is stored.
    assert await rows(platform, report.execution.id) == (False, 0, 0)
    assert (await platform.executions.list(workflow_id="wf"))[1] == 0
    with pytest.raises(NotFound):
        await platform.executions.get(report.execution.id)


async def test_history_all_keeps_every_run(platform: Platform) -> None:
    await platform.workflows.create(chain("wf", SaveHistory.ALL, setter("a", n=1)))
    report = await platform.executions.run("wf", {})
    present, node_runs, events = await rows(platform, report.execution.id)
    assert present and node_runs == 1 and events >= 4
    stored = await platform.executions.get(report.execution.id)
    assert stored.execution.status is ExecutionStatus.SUCCEEDED
    assert stored.execution.outputs == report.execution.outputs
    assert [r.node_id for r in stored.node_runs] == [r.node_id for r in report.node_runs]


async def test_failed_runs_are_kept_only_with_failed(platform: Platform) -> None:
    await platform.workflows.create(chain("keep", SaveHistory.FAILED, setter("a"), failing("b")))
    await platform.workflows.create(chain("drop", SaveHistory.NONE, setter("a"), failing("b")))
    kept = await platform.executions.run("keep", {})
    dropped = await platform.executions.run("drop", {})
    for report in (kept, dropped):
        assert report.execution.status is ExecutionStatus.FAILED
        assert report.execution.error is not None
    present, node_runs, events = await rows(platform, kept.execution.id)
    assert present and node_runs == 2 and events > 0
    stored = await platform.executions.get(kept.execution.id)
    assert stored.execution.status is ExecutionStatus.FAILED
    assert stored.execution.error == kept.execution.error
    assert await rows(platform, dropped.execution.id) == (False, 0, 0)


async def test_a_retried_run_that_succeeds_in_the_end_is_not_kept(platform: Platform) -> None:
    # RetryWorkflow: the first attempt fails, the second succeeds; only the end counts.
    node = Node(
        "n",
        "transform.json_parse",
        config={"json": "{{ '{}' if $execution.attempt > 1 else '{bad' }}"},
    )
    retry = WorkflowOnError(WorkflowOnErrorKind.RETRY, max_attempts=2)
    await platform.workflows.create(chain("wf", SaveHistory.FAILED, node, on_error=retry))
    report = await platform.executions.run("wf", {})
    assert report.execution.status is ExecutionStatus.SUCCEEDED
    assert await rows(platform, report.execution.id) == (False, 0, 0)


async def test_a_waiting_run_without_history_is_durable_and_resumes(platform: Platform) -> None:
    wf = chain(
        "wf", SaveHistory.NONE, setter("a", n=1), Node("gate", "human.approval"), setter("b")
    )
    await platform.workflows.create(wf)
    report = await platform.executions.run("wf", {})
    assert report.execution.status is ExecutionStatus.WAITING
    # It must survive a restart while it waits: everything so far is stored.
    present, node_runs, events = await rows(platform, report.execution.id)
    assert present and node_runs == 2 and events > 0
    stored = await platform.executions.get(report.execution.id)
    assert stored.execution.status is ExecutionStatus.WAITING
    live = Live(platform, "wf")
    await platform.executions.approve(report.execution.id, "gate", True, by="ann")
    async with asyncio.timeout(10):
        done = await platform.executions.wait(report.execution.id)
    finished = (await live.until_finished())[-1]
    assert finished.data["status"] == "succeeded"
    assert finished.data["outputs"] == {"b": {"value": {"n": 1}}}
    # Once it succeeded, its rows go.
    assert done.execution.status is ExecutionStatus.SUCCEEDED
    assert await rows(platform, report.execution.id) == (False, 0, 0)


async def test_a_waiting_run_cancelled_outside_the_worker_is_not_kept(
    platform: Platform,
) -> None:
    wf = chain("wf", SaveHistory.FAILED, Node("gate", "human.approval"), setter("b"))
    await platform.workflows.create(wf)
    report = await platform.executions.run("wf", {})
    assert report.execution.status is ExecutionStatus.WAITING
    live = Live(platform, "wf")
    cancelled = await platform.executions.cancel(report.execution.id)
    assert cancelled.status is ExecutionStatus.CANCELLED
    assert (await live.until_finished())[-1].data["status"] == "cancelled"
    assert await rows(platform, report.execution.id) == (False, 0, 0)


async def test_a_queued_run_without_history_is_removed_when_it_succeeds(
    platform: Platform,
) -> None:
    await platform.workflows.create(chain("wf", SaveHistory.NONE, setter("a", n=1)))
    live = Live(platform, "wf")
    execution = await platform.executions.start("wf", {})
    # Queued work is durable until it ran.
    assert (await rows(platform, execution.id))[0] or execution.status.finished is False
    events = await live.until_finished()
    assert events[-1].data["status"] == "succeeded"
    assert await rows(platform, execution.id) == (False, 0, 0)


async def test_a_queued_run_that_fails_is_kept_with_failed(platform: Platform) -> None:
    await platform.workflows.create(chain("wf", SaveHistory.FAILED, failing("a")))
    live = Live(platform, "wf")
    execution = await platform.executions.start("wf", {})
    assert (await live.until_finished())[-1].data["status"] == "failed"
    present, node_runs, events = await rows(platform, execution.id)
    assert present and node_runs == 1 and events > 0
    stored = await platform.executions.get(execution.id)
    assert stored.execution.status is ExecutionStatus.FAILED


# The embedded worker's fallback: SQLite only.
@pytest.mark.parametrize("database_url", [None])
async def test_a_busy_worker_queues_and_the_answer_comes_from_the_event(
    platform: Platform,
) -> None:
    # No free slot: run() falls back to the queue and answers from the finish event,
    # since nothing is left to read.
    await platform.workflows.create(chain("wf", SaveHistory.NONE, setter("a", n=1)))
    worker = platform.worker
    assert isinstance(worker, EmbeddedWorker)
    concurrency = worker.concurrency
    worker.concurrency = 0
    try:
        task = asyncio.create_task(platform.executions.run("wf", {"x": 1}))
        await asyncio.sleep(0.05)
        assert not task.done()
    finally:
        worker.concurrency = concurrency
        worker.submit("")
    async with asyncio.timeout(10):
        report = await task
    assert report.execution.status is ExecutionStatus.SUCCEEDED
    assert report.execution.outputs == {"a": {"value": {"x": 1, "n": 1}}}
    assert await rows(platform, report.execution.id) == (False, 0, 0)


async def test_a_run_held_in_memory_can_be_cancelled(platform: Platform) -> None:
    slow = Node("sleep", "time.delay", config={"delay_ms": 20_000})
    await platform.workflows.create(chain("wf", SaveHistory.NONE, setter("a"), slow))
    live = platform.bus.subscribe(workflow_id="wf")
    running = asyncio.create_task(platform.executions.run("wf", {}))
    async with asyncio.timeout(10):
        async for item in live:
            assert isinstance(item, Event)
            if item.type is EventType.NODE_STARTED and item.node_id == "sleep":
                break
    execution_id = item.execution_id
    cancelled = await platform.executions.cancel(execution_id)
    assert cancelled.status is ExecutionStatus.CANCELLED
    async with asyncio.timeout(10):
        report = await running
    assert report.execution.status is ExecutionStatus.CANCELLED
    assert await rows(platform, execution_id) == (False, 0, 0)
    live.close()
