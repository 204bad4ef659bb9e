"""The multi-node worker against a real store, on SQLite and PostgreSQL: takeover from the
last checkpoint, the takeover limit, parked delays resumed by the timer sweep, and release
on a graceful stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from runnel.bus import MemoryBus
from runnel.engine.executor import Executor
from runnel.engine.expressions import ExpressionEngine
from runnel.engine.registry import default_registry
from runnel.engine.services import NodeServices
from runnel.model import Edge, Execution, ExecutionStatus, Node, NodeRun, NodeStatus, Workflow
from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.events import EventType
from runnel.store import SqlStore
from runnel.worker.cluster import ClusterWorker, LeaseSettings

FAST = LeaseSettings(
    concurrency=4,
    lease_seconds=0.6,
    heartbeat_seconds=0.1,
    max_takeovers=2,
    poll_seconds=0.5,
    timer_sweep_seconds=0.05,
)


def chain(workflow_id: str, *delays_ms: int) -> Workflow:
    nodes = tuple(
        Node(id=f"d{i}", type="time.delay", config={"delay_ms": ms})
        for i, ms in enumerate(delays_ms, 1)
    )
    edges = tuple(
        Edge(
            id=f"d{i}-d{i + 1}",
            source=f"d{i}",
            source_port="value",
            target=f"d{i + 1}",
            target_port="value",
        )
        for i in range(1, len(delays_ms))
    )
    return Workflow(id=workflow_id, name=workflow_id, nodes=nodes, edges=edges)


class Node0:
    """Builds a worker over ``store`` and stops it at the end."""

    def __init__(self, store: SqlStore, park_over_ms: int | None = None) -> None:
        self.bus = MemoryBus()
        services = NodeServices(park_delays_over_ms=park_over_ms)
        self.executor = Executor(default_registry(), store, self.bus, services, ExpressionEngine())
        self.worker = ClusterWorker(store, self.executor, FAST, worker_id="live")
        self.crashed: list[tuple[str, str]] = []

        async def on_crash(execution_id: str, message: str) -> None:
            self.crashed.append((execution_id, message))

        self.worker.on_crash = on_crash


@pytest.fixture
async def node0(store: SqlStore) -> AsyncIterator[Node0]:
    built = Node0(store, park_over_ms=100)
    yield built
    await built.worker.stop(grace=0)


async def _orphan(store: SqlStore, workflow: Workflow, prior: list[NodeRun]) -> str:
    """An execution a dead worker left mid-run: its checkpoints, and an expired lease."""
    saved = await store.save_workflow(workflow)
    execution = await store.create_execution(
        Execution(
            id=f"x-{time.monotonic_ns()}", workflow_id=saved.id, workflow_version=saved.version
        ),
        enqueue=True,
    )
    assert await store.claim("dead", lease_seconds=-1) == execution.id
    await store.save(
        Checkpoint(
            execution_id=execution.id,
            workflow_id=saved.id,
            node_runs=tuple(
                NodeRun(
                    execution.id,
                    run.node_id,
                    run.status,
                    attempt=run.attempt,
                    outputs=run.outputs,
                    started_at=time.time(),
                    finished_at=time.time() if run.status.finished else None,
                )
                for run in prior
            ),
            execution=ExecutionUpdate(status=ExecutionStatus.RUNNING, started_at=time.time()),
        )
    )
    return execution.id


async def _finished(node0: Node0, execution_id: str) -> list[tuple[str, int]]:
    """Wait for the end; (node, attempt) of every node started meanwhile."""
    started: list[tuple[str, int]] = []
    async with asyncio.timeout(10):
        async with node0.bus.subscribe(execution_id=execution_id) as events:
            await node0.worker.start()
            async for event in events:
                if event.type is EventType.NODE_STARTED:
                    started.append((str(event.node_id), int(event.data["attempt"])))
                if event.type is EventType.EXECUTION_FINISHED:
                    return started
    raise AssertionError("unreachable")


async def test_takeover_continues_from_the_last_checkpoint(store: SqlStore, node0: Node0) -> None:
    execution_id = await _orphan(
        store,
        chain("takeover", 1, 1, 1),
        [
            NodeRun("", "d1", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": {}}),
            NodeRun("", "d2", NodeStatus.RUNNING, attempt=1),
        ],
    )
    started = await _finished(node0, execution_id)
    assert started == [("d2", 2), ("d3", 1)]
    execution = await store.get_execution(execution_id)
    assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
    assert node0.worker.takeovers == 1


async def test_takeover_after_two_finished_nodes_reruns_neither(
    store: SqlStore, node0: Node0
) -> None:
    execution_id = await _orphan(
        store,
        chain("takeover2", 1, 1, 1),
        [
            NodeRun("", "d1", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": {}}),
            NodeRun("", "d2", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": {}}),
            NodeRun("", "d3", NodeStatus.RUNNING, attempt=1),
        ],
    )
    started = await _finished(node0, execution_id)
    assert started == [("d3", 2)]


async def test_an_execution_taken_over_too_often_fails(store: SqlStore, node0: Node0) -> None:
    execution_id = await _orphan(store, chain("doomed", 1), [])
    assert await store.take_over("dead-2", -1) is not None
    assert await store.take_over("dead-3", -1) is not None  # the limit (2) is reached
    node0.worker.on_crash = None  # the real services end it; here the test records it
    crashed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_crash(failed_id: str, message: str) -> None:
        crashed.set_result(f"{failed_id}: {message}")

    node0.worker.on_crash = on_crash
    await node0.worker.start()
    async with asyncio.timeout(10):
        message = await crashed
    assert message.startswith(execution_id)
    assert "3 times" in message and "RUNNEL_MAX_TAKEOVERS" in message


async def test_a_long_delay_parks_and_any_worker_resumes_it(store: SqlStore, node0: Node0) -> None:
    saved = await store.save_workflow(chain("parked", 1, 300, 1))
    execution = await store.create_execution(
        Execution(id="parked-1", workflow_id=saved.id, workflow_version=saved.version),
        enqueue=True,
    )
    statuses: list[str] = []
    async with asyncio.timeout(10):
        async with node0.bus.subscribe(execution_id=execution.id) as events:
            await node0.worker.start()
            async for event in events:
                if event.type is EventType.EXECUTION_STATUS:
                    statuses.append(str(event.data["status"]))
                if event.type is EventType.EXECUTION_FINISHED:
                    break
    assert statuses[:2] == ["waiting", "running"]
    final = await store.get_execution(execution.id)
    assert final is not None and final.status is ExecutionStatus.SUCCEEDED
    runs = {run.node_id: run for run in await store.node_runs(execution.id)}
    assert runs["d1"].attempt == 1 and runs["d2"].attempt == 1


async def test_graceful_stop_releases_what_is_still_running(store: SqlStore, node0: Node0) -> None:
    saved = await store.save_workflow(chain("long", 1, 50_000))
    node0.executor.services.park_delays_over_ms = None  # sleep in place, holding the worker
    execution = await store.create_execution(
        Execution(id="long-1", workflow_id=saved.id, workflow_version=saved.version),
        enqueue=True,
    )
    async with asyncio.timeout(10):
        async with node0.bus.subscribe(execution_id=execution.id) as events:
            await node0.worker.start()
            async for event in events:
                if event.type is EventType.NODE_STARTED and event.node_id == "d2":
                    break
    await node0.worker.stop(grace=0.05)
    released = await store.get_execution(execution.id)
    assert released is not None and released.status is ExecutionStatus.QUEUED
    # Another worker continues it at once: d1 is not run again.
    assert await store.claim("next", 30) == execution.id
    runs = {run.node_id: run for run in await store.node_runs(execution.id)}
    assert runs["d1"].status is NodeStatus.SUCCEEDED


async def test_a_stop_during_a_claim_releases_what_it_took(
    store: SqlStore, node0: Node0, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim takes several executions at once: a worker stopped while it is on its way
    gives them all back, instead of holding them until their leases run out."""
    saved = await store.save_workflow(chain("quick", 1))
    ids = []
    for i in range(3):
        execution = await store.create_execution(
            Execution(id=f"q-{i}", workflow_id=saved.id, workflow_version=saved.version),
            enqueue=True,
        )
        ids.append(execution.id)
    entered = asyncio.Event()
    proceed = asyncio.Event()
    claim_many = store.claim_many

    async def slow_claim(worker_id: str, lease_seconds: float, limit: int) -> list[Execution]:
        claimed = await claim_many(worker_id, lease_seconds, limit)
        entered.set()
        await proceed.wait()
        return claimed

    monkeypatch.setattr(store, "claim_many", slow_claim)
    await node0.worker.start()
    async with asyncio.timeout(10):
        await entered.wait()
    stopping = asyncio.create_task(node0.worker.stop(grace=0))
    await asyncio.sleep(0.05)
    proceed.set()
    await stopping
    assert node0.worker.running == 0
    for execution_id in ids:
        released = await store.get_execution(execution_id)
        assert released is not None and released.status is ExecutionStatus.QUEUED
    assert {x.id for x in await store.claim_many("next", 30, limit=10)} == set(ids)
