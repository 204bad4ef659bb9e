"""Where the executor's checkpoints go: pipelined for pure nodes, held in memory for runs
that keep no history (``settings.save_history``), deleted at the end when not kept."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from typing import Any

from runnel.engine.executor import Executor, keeps_history
from runnel.engine.node import NodeContext, NodeManifest, NodeOutput, PortSpec
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import RunRequest
from runnel.engine.signals import WaitForApproval
from runnel.model.checkpoint import Checkpoint
from runnel.model.events import EventType
from runnel.model.execution import Execution, ExecutionStatus
from runnel.model.workflow import Edge, Node, SaveHistory, Workflow, WorkflowSettings
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink


class Step:
    """Pure or not; records how many checkpoints were committed when it started."""

    def __init__(self, type_: str, *, pure: bool, store: PipelinedStore) -> None:
        self.manifest = NodeManifest(
            type=type_,
            category="test",
            description=type_,
            inputs=(PortSpec("value"),),
            outputs=(PortSpec("value"),),
            pure=pure,
        )
        self.store = store
        self.seen: list[tuple[str, int, int]] = []

    async def run(self, ctx: NodeContext) -> NodeOutput:
        self.seen.append((ctx.node.id, len(self.store.submitted), self.store.committed))
        if ctx.config.get("wait") and ctx.decision is None:
            raise WaitForApproval("ok?")
        return {"value": ctx.inputs.get("value")}


class PipelinedStore(MemoryCheckpointStore):
    """A ``PipelinedCheckpointStore``: ``submit`` queues, a commit settles all queued."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[Checkpoint] = []
        self.committed = 0
        self._waiting: list[tuple[Checkpoint, asyncio.Future[None]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Future[None]] = set()

    def submit(self, checkpoint: Checkpoint) -> Awaitable[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.submitted.append(checkpoint)
        self._waiting.append((checkpoint, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit)
        return future

    def _commit(self) -> None:
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._store(waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _store(self, waiting: list[tuple[Checkpoint, asyncio.Future[None]]]) -> None:
        for checkpoint, future in waiting:
            await self.save(checkpoint)
            self.committed += 1
            future.set_result(None)


def setup(
    *steps: tuple[str, str], history: SaveHistory = SaveHistory.ALL, **config: Any
) -> tuple[Executor, PipelinedStore, dict[str, Step], Workflow]:
    store = PipelinedStore()
    types = {
        "pure": Step("t.pure", pure=True, store=store),
        "effect": Step("t.effect", pure=False, store=store),
    }
    nodes = tuple(
        Node(node_id, types[kind].manifest.type, config=config.get(node_id, {}))
        for node_id, kind in steps
    )
    edges = tuple(Edge(f"e{i}", a.id, b.id) for i, (a, b) in enumerate(itertools.pairwise(nodes)))
    workflow = Workflow(
        id="wf", nodes=nodes, edges=edges, settings=WorkflowSettings(save_history=history)
    )
    executor = Executor(NodeRegistry(types.values()), store, RecordingEventSink())
    return executor, store, types, workflow


def new_execution(workflow: Workflow) -> Execution:
    return Execution("x", workflow.id, workflow.version, status=ExecutionStatus.RUNNING)


def test_keeps_history() -> None:
    assert keeps_history(SaveHistory.ALL, ExecutionStatus.SUCCEEDED)
    assert keeps_history(SaveHistory.FAILED, ExecutionStatus.FAILED)
    assert not keeps_history(SaveHistory.FAILED, ExecutionStatus.SUCCEEDED)
    assert not keeps_history(SaveHistory.FAILED, ExecutionStatus.CANCELLED)
    assert not keeps_history(SaveHistory.NONE, ExecutionStatus.FAILED)
    # A run that has not ended is always kept.
    assert keeps_history(SaveHistory.NONE, ExecutionStatus.WAITING)
    assert keeps_history(SaveHistory.NONE, ExecutionStatus.PAUSED)


async def test_pure_chain_commits_once_and_effects_wait_for_commits() -> None:
    executor, store, types, workflow = setup(
        ("a", "pure"), ("b", "pure"), ("c", "effect"), ("d", "pure")
    )
    result = await executor.run(RunRequest("x", workflow, {"value": 1}))
    assert result.status is ExecutionStatus.SUCCEEDED
    # a and b ran before anything was committed; c only once everything before it was.
    pure_seen = {node: committed for node, _, committed in types["pure"].seen}
    assert pure_seen["a"] == 0 and pure_seen["b"] == 0
    ((_, submitted, committed),) = types["effect"].seen
    assert committed == submitted > 0
    # The checkpoints of one loop turn went as one, and nothing was lost.
    assert len(store.submitted) <= 4
    events = store.events_of("x")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type is EventType.EXECUTION_FINISHED
    assert {run.node_id for (_, _), run in store.node_runs.items()} == {"a", "b", "c", "d"}


async def test_a_run_kept_in_memory_writes_nothing_when_it_succeeds() -> None:
    executor, store, _, workflow = setup(("a", "pure"), ("b", "effect"), history=SaveHistory.NONE)
    request = RunRequest(
        "x", workflow, {"value": 1}, create=new_execution(workflow), history_in_memory=True
    )
    result = await executor.run(request)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert store.submitted == [] and store.checkpoints == []
    # The live events were still published, the finish among them.
    sink = executor.events
    assert isinstance(sink, RecordingEventSink)
    assert sink.events[-1].type is EventType.EXECUTION_FINISHED


async def test_a_written_run_is_discarded_at_its_end() -> None:
    # Not in memory (e.g. the cluster worker): written as it runs, deleted at the end.
    executor, store, _, workflow = setup(("a", "effect"), history=SaveHistory.FAILED)
    result = await executor.run(RunRequest("x", workflow, {"value": 1}))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert store.submitted[-1].discard and store.submitted[-1].final
    assert not any(checkpoint.discard for checkpoint in store.submitted[:-1])


async def test_a_waiting_run_kept_in_memory_is_written_whole() -> None:
    executor, store, _, workflow = setup(
        ("a", "pure"), ("b", "effect"), history=SaveHistory.NONE, b={"wait": True}
    )
    execution = new_execution(workflow)
    request = RunRequest("x", workflow, {"value": 1}, create=execution, history_in_memory=True)
    result = await executor.run(request)
    assert result.status is ExecutionStatus.WAITING
    # One checkpoint: the row, every node run and every event so far.
    (written,) = store.submitted
    assert written.create == execution and written.final
    assert written.execution is not None
    assert written.execution.status is ExecutionStatus.WAITING
    assert written.execution.started_at is not None
    assert {run.node_id for run in written.node_runs} == {"a", "b"}
    assert [e.seq for e in written.events] == list(range(1, result.next_seq))
