"""Workflow and execution use cases on a real SQLite store with the embedded worker."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runnel.model.events import EventType
from runnel.model.execution import ExecutionStatus, NodeStatus
from runnel.model.workflow import Edge, Node, Trigger, TriggerKind, Workflow
from runnel.platform import Platform, PlatformConfig
from runnel.services.errors import Conflict, InvalidInput, NotFound


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    platform = await Platform.open(PlatformConfig(data_dir=tmp_path))
    await platform.start()
    try:
        yield platform
    finally:
        await platform.stop()


def chain(workflow_id: str = "wf", *nodes: Node, **kwargs: Any) -> Workflow:
    edges = tuple(
        Edge(f"e{i}", a.id, b.id, _out(a), _in(b))
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    )
    return Workflow(id=workflow_id, name=workflow_id, nodes=nodes, edges=edges, **kwargs)


def _out(node: Node) -> str:
    return {"human.approval": "approved", "data.static": "data"}.get(node.type, "value")


def _in(node: Node) -> str:
    return "value"


def setter(node_id: str, **values: Any) -> Node:
    return Node(node_id, "transform.set", config={"values": values})


async def test_run_a_workflow_and_read_its_history(platform: Platform) -> None:
    await platform.workflows.create(
        chain("wf", setter("a", n=1), setter("b", m="{{ $input.value.n + 1 }}"))
    )
    report = await platform.executions.run("wf", {"x": 0})
    assert report.execution.status is ExecutionStatus.SUCCEEDED
    assert report.completed_nodes == 2 and report.total_nodes == 2
    assert report.execution.outputs == {"b": {"value": {"x": 0, "n": 1, "m": 2}}}
    assert [run.status for run in report.node_runs] == [NodeStatus.SUCCEEDED] * 2
    events = await platform.executions.events(report.execution.id)
    assert events[0].type is EventType.EXECUTION_STARTED
    assert events[-1].type is EventType.EXECUTION_FINISHED
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    later = await platform.executions.events(report.execution.id, after_seq=events[-3].seq)
    assert [e.seq for e in later] == [events[-2].seq, events[-1].seq]
    listed, total = await platform.executions.list(workflow_id="wf")
    assert total == 1 and listed[0].id == report.execution.id


async def test_create_conflict_invalid_and_not_found(platform: Platform) -> None:
    await platform.workflows.create(chain("wf", setter("a")))
    with pytest.raises(Conflict):
        await platform.workflows.create(chain("wf", setter("a")))
    broken = chain("bad", Node("a", "transform.sett"), Node("a", "debug.log"))
    with pytest.raises(InvalidInput) as caught:
        await platform.workflows.create(broken)
    wheres = [p.where or "" for p in caught.value.problems]
    assert any("'a'" in w for w in wheres)
    assert any("transform.set" in p.message for p in caught.value.problems)
    with pytest.raises(NotFound):
        await platform.executions.run("nope", {})
    with pytest.raises(NotFound):
        await platform.executions.get("nope")


async def test_versions_and_delete(platform: Platform) -> None:
    v1 = await platform.workflows.create(chain("wf", setter("a", v=1)))
    v2 = await platform.workflows.update("wf", chain("wf", setter("a", v=2)))
    assert (v1.version, v2.version) == (1, 2)
    old = await platform.executions.run("wf", {}, version=1)
    assert old.execution.outputs == {"a": {"value": {"v": 1}}}
    new = await platform.executions.run("wf", {})
    assert new.execution.outputs == {"a": {"value": {"v": 2}}}
    assert [v.version for v in await platform.workflows.versions("wf")] == [1, 2]
    await platform.workflows.delete("wf")
    with pytest.raises(NotFound):
        await platform.workflows.get("wf")
    with pytest.raises(NotFound):
        await platform.executions.run("wf", {})
    # The history of a deleted workflow stays readable.
    assert (await platform.executions.get(old.execution.id)).total_nodes == 1


async def test_approval_waits_then_continues(platform: Platform) -> None:
    wf = chain("ok", setter("a", n=1), Node("gate", "human.approval"), setter("b", done=True))
    await platform.workflows.create(wf)
    report = await platform.executions.run("ok", {})
    assert report.execution.status is ExecutionStatus.WAITING
    with pytest.raises(Conflict):
        await platform.executions.approve(report.execution.id, "a", True)
    await platform.executions.approve(report.execution.id, "gate", True, by="ann")
    async with asyncio.timeout(10):
        done = await platform.executions.wait(report.execution.id)
    assert done.execution.status is ExecutionStatus.SUCCEEDED
    assert done.execution.outputs == {"b": {"value": {"n": 1, "done": True}}}
    runs = {run.node_id: run for run in done.node_runs}
    assert runs["a"].attempt == 1  # finished before the wait, never ran again
    assert runs["gate"].decision is not None and runs["gate"].decision.by == "ann"


async def test_cancel_running_and_waiting(platform: Platform) -> None:
    await platform.workflows.create(
        chain("slow", Node("d", "time.delay", config={"delay_ms": 30000}))
    )
    execution = await platform.executions.start("slow", {})
    subscription = platform.bus.subscribe(execution_id=execution.id)
    try:
        async with asyncio.timeout(10):
            async for item in subscription:
                if getattr(item, "type", None) is EventType.NODE_STARTED:
                    break
    finally:
        subscription.close()
    cancelled = await asyncio.wait_for(platform.executions.cancel(execution.id), 10)
    assert cancelled.status is ExecutionStatus.CANCELLED
    with pytest.raises(Conflict):
        await platform.executions.cancel(execution.id)

    await platform.workflows.create(chain("gate", Node("g", "human.approval")))
    waiting = await platform.executions.run("gate", {})
    assert waiting.execution.status is ExecutionStatus.WAITING
    cancelled = await platform.executions.cancel(waiting.execution.id)
    assert cancelled.status is ExecutionStatus.CANCELLED
    events = await platform.executions.events(waiting.execution.id)
    assert events[-1].type is EventType.EXECUTION_FINISHED
    assert events[-1].data["status"] == "cancelled"


async def test_webhook_lookup(platform: Platform) -> None:
    wf = chain(
        "hook",
        setter("a", seen=True),
        triggers=(Trigger("t", TriggerKind.WEBHOOK, {"path": "/bench/"}),),
    )
    await platform.workflows.create(wf)
    found = await platform.workflows.find_by_webhook("bench")
    assert found is not None and found.id == "hook"
    assert await platform.workflows.find_by_webhook("other") is None
    clash = chain(
        "hook2", setter("a"), triggers=(Trigger("t", TriggerKind.WEBHOOK, {"path": "bench"}),)
    )
    with pytest.raises(Conflict):
        await platform.workflows.create(clash)


async def test_queued_before_start_is_claimed_on_start(tmp_path: Path) -> None:
    platform = await Platform.open(PlatformConfig(data_dir=tmp_path))
    try:
        await platform.workflows.create(chain("wf", setter("a", n=1)))
        execution = await platform.executions.start("wf", {})
        assert (await platform.executions.get(execution.id)).execution.status is (
            ExecutionStatus.QUEUED
        )
        await platform.start()
        async with asyncio.timeout(10):
            done = await platform.executions.wait(execution.id)
        assert done.execution.status is ExecutionStatus.SUCCEEDED
    finally:
        await platform.stop()
