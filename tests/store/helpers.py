"""Small builders shared by the store tests."""

from __future__ import annotations

import time
from typing import Any

from runnel.engine.ports import Checkpoint, ExecutionUpdate
from runnel.model import (
    Edge,
    Event,
    EventType,
    ExecutionStatus,
    Node,
    NodeRun,
    NodeStatus,
    OnError,
    Position,
    RetryPolicy,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowOnError,
    WorkflowSettings,
)
from runnel.model.workflow import SaveHistory, WorkflowOnErrorKind


def simple_workflow(workflow_id: str = "wf", **changes: Any) -> Workflow:
    fields: dict[str, Any] = {
        "id": workflow_id,
        "name": f"workflow {workflow_id}",
        "nodes": (Node(id="a", type="debug.log"), Node(id="b", type="debug.log")),
    }
    fields.update(changes)
    return Workflow(**fields)


def event(execution_id: str, seq: int, node_id: str | None = None, **data: Any) -> Event:
    return Event(
        execution_id=execution_id,
        seq=seq,
        type=EventType.NODE_EVENT if node_id else EventType.EXECUTION_STATUS,
        timestamp=time.time(),
        node_id=node_id,
        data=data,
    )


def node_checkpoint(
    execution_id: str,
    node_id: str,
    seq: int,
    *,
    status: NodeStatus = NodeStatus.SUCCEEDED,
    outputs: dict[str, Any] | None = None,
    execution: ExecutionUpdate | None = None,
    workflow_id: str = "wf",
) -> Checkpoint:
    """A node's result with its ``node.finished`` event, as the executor writes it."""
    now = time.time()
    run = NodeRun(
        execution_id=execution_id,
        node_id=node_id,
        status=status,
        attempt=1,
        inputs={"value": seq},
        outputs=outputs if outputs is not None else {"value": f"{node_id}-{seq}"},
        started_at=now - 0.01,
        finished_at=now,
    )
    finished = Event(
        execution_id=execution_id,
        seq=seq,
        type=EventType.NODE_FINISHED,
        timestamp=now,
        workflow_id=workflow_id,
        node_id=node_id,
        data={"status": status.value, "outputs": run.outputs},
    )
    return Checkpoint(
        execution_id=execution_id,
        workflow_id=workflow_id,
        node_runs=(run,),
        events=(finished,),
        execution=execution,
    )


def running(started_at: float | None = None) -> ExecutionUpdate:
    return ExecutionUpdate(status=ExecutionStatus.RUNNING, started_at=started_at or time.time())


def full_workflow() -> Workflow:
    """A workflow with no field left at its default."""
    return Workflow(
        id="wf-1",
        name="Everything",
        description="every field set",
        nodes=(
            Node(
                id="fetch",
                type="http.request",
                name="Fetch",
                config={"url": "{{ $args.url }}", "headers": {"a": ["b", 1, 2.5, None, True]}},
                position=Position(x=10.5, y=-3.0),
                retry=RetryPolicy(
                    max_attempts=3,
                    delay_ms=100,
                    backoff_multiplier=2.0,
                    max_delay_ms=900,
                    jitter=0.1,
                ),
                timeout_ms=5000,
                on_error=OnError.CONTINUE,
                needs_approval=True,
                filters=[{"all": [{"field": "x", "op": "eq", "value": 1}]}],
                extra={"flowork": {"module_id": "m1"}},
            ),
            Node(id="log", type="debug.log"),
        ),
        edges=(
            Edge(
                id="e1",
                source="fetch",
                target="log",
                source_port="body",
                target_port="message",
                extra={"label": "x"},
            ),
        ),
        triggers=(
            Trigger(
                id="t1", kind=TriggerKind.CRON, config={"expression": "* * * * *"}, enabled=False
            ),
            Trigger(id="t2", kind=TriggerKind.WEBHOOK, config={"path": "hook"}),
        ),
        settings=WorkflowSettings(
            max_parallel_nodes=3,
            on_error=WorkflowOnError(kind=WorkflowOnErrorKind.RETRY, max_attempts=4),
            max_execution_time_ms=60_000,
            save_history=SaveHistory.FAILED,
            extra={"global_loop_config": {"n": 2}},
        ),
        owner="alice",
        group="team",
        version=7,
        extra={"dialect": "flowork"},
    )
