"""The in-memory ports in ``runnel.testing.store`` behave like the real store."""

from __future__ import annotations

import asyncio

import pytest

from runnel.engine.ports import Checkpoint, CheckpointStore, EventSink, ExecutionUpdate
from runnel.model import ApprovalDecision, EventType, ExecutionStatus, NodeRun, NodeStatus
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink

from .helpers import event, node_checkpoint, running


async def test_memory_store_records_what_it_is_given() -> None:
    store = MemoryCheckpointStore()
    port: CheckpointStore = store  # satisfies the protocol
    first = node_checkpoint("x", "a", 1, execution=running(10.0))
    second = node_checkpoint("x", "b", 2, execution=ExecutionUpdate(ExecutionStatus.SUCCEEDED))
    await port.save(first)
    await port.save(second)
    await port.save(Checkpoint("y", "wf", events=(event("y", 1),)))

    assert store.checkpoints == [first, second, store.checkpoints[2]]
    assert store.node_run("x", "a") == first.node_runs[0]
    assert set(store.runs_of("x")) == {"a", "b"}
    assert [e.seq for e in store.events_of("x")] == [1, 2]
    assert store.event_types("x") == [EventType.NODE_FINISHED, EventType.NODE_FINISHED]
    assert store.status("x") is ExecutionStatus.SUCCEEDED
    assert [u.status for u in store.updates_of("x")] == [
        ExecutionStatus.RUNNING,
        ExecutionStatus.SUCCEEDED,
    ]
    state = store.resume_state("x")
    assert (state.next_seq, state.started_at, set(state.node_runs)) == (3, 10.0, {"a", "b"})


async def test_memory_store_refuses_a_seq_twice_and_keeps_nothing_of_it() -> None:
    store = MemoryCheckpointStore()
    await store.save(node_checkpoint("x", "a", 1))
    with pytest.raises(ValueError, match="seq"):
        await store.save(node_checkpoint("x", "b", 1))
    assert store.node_run("x", "b") is None
    assert len(store.checkpoints) == 1


async def test_memory_store_fails_on_demand() -> None:
    store = MemoryCheckpointStore()
    store.fail_next = OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        await store.save(node_checkpoint("x", "a", 1))
    await store.save(node_checkpoint("x", "a", 1))
    assert len(store.checkpoints) == 1


async def test_memory_store_decisions() -> None:
    store = MemoryCheckpointStore()
    approve = ApprovalDecision(approved=True, by="alice")
    assert not store.record_decision("x", "b", approve)
    await store.save(Checkpoint("x", "wf", node_runs=(NodeRun("x", "b", NodeStatus.WAITING),)))
    assert store.record_decision("x", "b", approve)
    assert not store.record_decision("x", "b", ApprovalDecision(approved=False))
    await store.save(Checkpoint("x", "wf", node_runs=(NodeRun("x", "b", NodeStatus.SUCCEEDED),)))
    run = store.node_run("x", "b")
    assert run is not None
    assert run.decision == approve


async def test_recording_sink_records_and_wakes_waiters() -> None:
    sink = RecordingEventSink()
    port: EventSink = sink
    port.publish(event("x", 1))
    assert await sink.wait_for(EventType.EXECUTION_STATUS) == sink.events[0]

    waiter = asyncio.ensure_future(sink.wait_for(lambda e: e.seq == 3))
    await asyncio.sleep(0)
    sink.publish(event("x", 2, "a"))
    assert not waiter.done()
    sink.publish(event("x", 3, "a"))
    assert (await waiter).seq == 3
    assert sink.types("x") == [
        EventType.EXECUTION_STATUS,
        EventType.NODE_EVENT,
        EventType.NODE_EVENT,
    ]
    assert len(sink.of_type(EventType.NODE_EVENT)) == 2

    with pytest.raises(TimeoutError):
        await sink.wait_for(EventType.DEBUG_POPUP, within=0.01)
