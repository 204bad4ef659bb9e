"""The executor's semantics, against fake node types and the in-memory ports."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from runnel.engine.control import ExecutionControl
from runnel.engine.executor import Executor
from runnel.engine.node import NodeContext, NodeManifest, NodeOutput, PortSpec
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import ResumeState, RunRequest
from runnel.engine.signals import NodeFailure, WaitForApproval
from runnel.model.events import EventType
from runnel.model.execution import (
    ApprovalDecision,
    ExecutionMode,
    ExecutionStatus,
    NodeRun,
    NodeStatus,
)
from runnel.model.workflow import (
    Edge,
    Node,
    OnError,
    RetryPolicy,
    Workflow,
    WorkflowOnError,
    WorkflowOnErrorKind,
    WorkflowSettings,
)
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink

# -- fake node types ----------------------------------------------------------------------


class Echo:
    """Passes ``value`` through, or emits ``config.value`` when given."""

    manifest = NodeManifest(
        type="t.echo",
        category="test",
        description="echo",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("value"),),
        dynamic_inputs=True,
    )

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def run(self, ctx: NodeContext) -> NodeOutput:
        self.calls.append((ctx.node.id, ctx.attempt))
        if "value" in ctx.config:
            return {"value": ctx.config["value"]}
        return {"value": ctx.inputs.get("value")}


class Branch:
    manifest = NodeManifest(
        type="t.branch",
        category="test",
        description="fires yes or no",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("yes"), PortSpec("no")),
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        return {"yes" if ctx.inputs.get("value") else "no": ctx.inputs.get("value")}


class Sleep:
    """Sleeps ``config.seconds``; records how many run at once."""

    manifest = NodeManifest(
        type="t.sleep",
        category="test",
        description="sleep",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("value"),),
    )

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def run(self, ctx: NodeContext) -> NodeOutput:
        self.started.append(ctx.node.id)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(float(ctx.config.get("seconds", 0)))
        except asyncio.CancelledError:
            self.cancelled.append(ctx.node.id)
            raise
        finally:
            self.active -= 1
        return {"value": ctx.inputs.get("value")}


class Flaky:
    """Fails until attempt ``config.succeed_on`` (never, when absent)."""

    manifest = NodeManifest(
        type="t.flaky",
        category="test",
        description="flaky",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("value"),),
    )

    def __init__(self) -> None:
        self.attempts: list[int] = []
        self.keys: list[str] = []

    async def run(self, ctx: NodeContext) -> NodeOutput:
        self.attempts.append(ctx.attempt)
        self.keys.append(ctx.idempotency_key)
        succeed_on = ctx.config.get("succeed_on")
        if succeed_on is None or ctx.attempt < succeed_on:
            raise NodeFailure(f"boom on attempt {ctx.attempt}", kind="test")
        return {"value": ctx.attempt}


class Approve:
    manifest = NodeManifest(
        type="t.approve",
        category="test",
        description="approval",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("approved"), PortSpec("rejected")),
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        if ctx.decision is None:
            raise WaitForApproval("please look")
        port = "approved" if ctx.decision.approved else "rejected"
        return {port: ctx.inputs.get("value")}


class Effect:
    manifest = NodeManifest(
        type="t.effect",
        category="test",
        description="touches the world",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("value"),),
        side_effects=True,
    )

    def __init__(self) -> None:
        self.touched = 0

    async def run(self, ctx: NodeContext) -> NodeOutput:
        if ctx.simulate:
            return {"value": {"dry_run": True}}
        self.touched += 1
        return {"value": "real"}


class Merge:
    manifest = NodeManifest(
        type="t.merge",
        category="test",
        description="merge",
        outputs=(PortSpec("value"),),
        dynamic_inputs=True,
        runs_on_first_input=lambda config: config.get("mode") == "first",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        return {"value": [value for _, _, value in ctx.arrivals]}


class Talk:
    manifest = NodeManifest(
        type="t.talk",
        category="test",
        description="emits node events",
        outputs=(PortSpec("value"),),
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        ctx.emit("info", "hello")
        ctx.emit("progress", "half", percent=50)
        ctx.emit("popup", title="T", content={"a": 1})
        return {"value": 1}


# -- helpers ------------------------------------------------------------------------------


class Harness:
    def __init__(self) -> None:
        self.echo = Echo()
        self.sleep = Sleep()
        self.flaky = Flaky()
        self.effect = Effect()
        self.registry = NodeRegistry(
            [self.echo, Branch(), self.sleep, self.flaky, Approve(), self.effect, Merge(), Talk()]
        )
        self.store = MemoryCheckpointStore()
        self.sink = RecordingEventSink()
        self.delays: list[float] = []
        self.runs = 0
        self.executor = Executor(
            self.registry, self.store, self.sink, sleep=self._sleep, rng=lambda: 1.0
        )

    async def _sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    async def run(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any] | None = None,
        control: ExecutionControl | None = None,
        execution_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        self.runs += 1
        request = RunRequest(execution_id or f"ex-{self.runs}", workflow, inputs or {}, **kwargs)
        return await self.executor.run(request, control)

    def types(self) -> list[tuple[EventType, str | None]]:
        return [(event.type, event.node_id) for event in self.sink.events]


def node(node_id: str, type_: str = "t.echo", **kwargs: Any) -> Node:
    return Node(id=node_id, type=type_, **kwargs)


def edge(source: str, target: str, source_port: str = "value", target_port: str = "value") -> Edge:
    return Edge(f"{source}->{target}:{source_port}", source, target, source_port, target_port)


def workflow(nodes: list[Node], edges: list[Edge] = (), **settings: Any) -> Workflow:  # type: ignore[assignment]
    return Workflow(
        id="wf",
        name="test",
        nodes=tuple(nodes),
        edges=tuple(edges),
        settings=WorkflowSettings(**settings),
    )


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- data flow ----------------------------------------------------------------------------


async def test_linear_chain_passes_values_and_orders_events(h: Harness) -> None:
    wf = workflow([node("a"), node("b"), node("c")], [edge("a", "b"), edge("b", "c")])
    result = await h.run(wf, {"value": 7})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.outputs == {"c": {"value": 7}}
    assert result.completed_nodes == 3 and result.total_nodes == 3
    assert [e.seq for e in h.sink.events] == list(range(1, len(h.sink.events) + 1))
    assert h.types() == [
        (EventType.EXECUTION_STARTED, None),
        (EventType.NODE_STARTED, "a"),
        (EventType.NODE_FINISHED, "a"),
        (EventType.EDGE_TRAVERSED, "a"),
        (EventType.NODE_STARTED, "b"),
        (EventType.NODE_FINISHED, "b"),
        (EventType.EDGE_TRAVERSED, "b"),
        (EventType.NODE_STARTED, "c"),
        (EventType.NODE_FINISHED, "c"),
        (EventType.EXECUTION_FINISHED, None),
    ]
    # Every event was checkpointed, in order, and the execution row ended succeeded.
    assert [e.seq for e in h.store.events_of("ex-1")] == [e.seq for e in h.sink.events]
    assert h.store.status("ex-1") is ExecutionStatus.SUCCEEDED


async def test_start_nodes_get_inputs_by_port_and_whole_object_on_default_port(
    h: Harness,
) -> None:
    wf = workflow([node("a")])
    result = await h.run(wf, {"a": 1, "b": 2})
    assert result.outputs == {"a": {"value": {"a": 1, "b": 2}}}
    result = await h.run(wf, {"value": "x", "b": 2})
    assert result.outputs == {"a": {"value": "x"}}


async def test_any_string_is_a_node_id(h: Harness) -> None:
    wf = workflow([node("node 1 ü"), node("x/y")], [edge("node 1 ü", "x/y")])
    result = await h.run(wf, {"value": 1})
    assert result.status is ExecutionStatus.SUCCEEDED


async def test_branch_kills_the_path_not_taken(h: Harness) -> None:
    wf = workflow(
        [node("if", "t.branch"), node("yes"), node("no"), node("after_no")],
        [edge("if", "yes", "yes"), edge("if", "no", "no"), edge("no", "after_no")],
    )
    result = await h.run(wf, {"value": True})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.node_runs["yes"].status is NodeStatus.SUCCEEDED
    assert result.node_runs["no"].status is NodeStatus.SKIPPED
    assert result.node_runs["after_no"].status is NodeStatus.SKIPPED
    assert [call[0] for call in h.echo.calls] == ["yes"]
    assert result.outputs == {"yes": {"value": True}}


async def test_join_runs_when_one_branch_fired(h: Harness) -> None:
    wf = workflow(
        [node("if", "t.branch"), node("yes"), node("no"), node("join")],
        [
            edge("if", "yes", "yes"),
            edge("if", "no", "no"),
            edge("yes", "join", target_port="a"),
            edge("no", "join", target_port="b"),
        ],
    )
    result = await h.run(wf, {"value": 0})
    assert result.node_runs["join"].status is NodeStatus.SUCCEEDED
    assert result.node_runs["yes"].status is NodeStatus.SKIPPED


async def test_fan_out_and_merge_all_keeps_edge_order(h: Harness) -> None:
    branches = [node(f"b{i}", config={"value": i}) for i in range(5)]
    wf = workflow(
        [node("start"), *branches, node("merge", "t.merge")],
        [edge("start", f"b{i}") for i in range(5)]
        + [edge(f"b{i}", "merge", target_port=f"in{i}") for i in range(5)],
    )
    result = await h.run(wf, {"value": 0})
    assert result.outputs == {"merge": {"value": [0, 1, 2, 3, 4]}}


async def test_merge_first_runs_on_first_arrival(h: Harness) -> None:
    wf = workflow(
        [
            node("start"),
            node("fast", "t.sleep", config={"seconds": 0}),
            node("slow", "t.sleep", config={"seconds": 0.2}),
            node("merge", "t.merge", config={"mode": "first"}),
        ],
        [
            edge("start", "fast"),
            edge("start", "slow"),
            edge("fast", "merge"),
            edge("slow", "merge"),
        ],
    )
    result = await h.run(wf, {"value": "v"})
    assert result.outputs["merge"] == {"value": ["v"]}


async def test_parallel_limit_is_honoured(h: Harness) -> None:
    sleepers = [node(f"s{i}", "t.sleep", config={"seconds": 0.02}) for i in range(6)]
    wf = workflow(sleepers, max_parallel_nodes=2)
    result = await h.run(wf)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.sleep.peak == 2
    wf = workflow(sleepers, max_parallel_nodes=10)
    h.sleep.peak = 0
    await h.run(wf)
    assert h.sleep.peak == 6


async def test_expressions_see_inputs_nodes_args_and_vars(h: Harness) -> None:
    wf = workflow(
        [
            node("a", name="first"),
            node("b", config={"value": "{{ $input.value + $node.first.value + $args.k }}"}),
            node("c", config={"value": "{{ vars.GREETING }} {{ $execution.id }}"}),
        ],
        [edge("a", "b"), edge("b", "c")],
    )
    result = await h.run(wf, {"value": 2, "k": 10}, variables={"GREETING": "hi"})
    assert result.node_runs["b"].outputs == {"value": 14}
    assert result.outputs == {"c": {"value": "hi ex-1"}}


async def test_a_bad_expression_fails_the_node_naming_it(h: Harness) -> None:
    wf = workflow([node("a", config={"value": "{{ $input.nope.deeper }}"})])
    result = await h.run(wf, {"value": 1})
    assert result.status is ExecutionStatus.FAILED
    error = result.node_runs["a"].error
    assert error is not None and error.kind == "expression"
    assert "'a'" in error.message and "$input.nope.deeper" in error.message


# -- failures -----------------------------------------------------------------------------


async def test_retry_with_backoff_jitter_and_max_delay(h: Harness) -> None:
    policy = RetryPolicy(
        max_attempts=4, delay_ms=100, backoff_multiplier=2.0, max_delay_ms=300, jitter=0.5
    )
    wf = workflow([node("f", "t.flaky", config={"succeed_on": 4}, retry=policy)])
    result = await h.run(wf)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.flaky.attempts == [1, 2, 3, 4]
    assert h.flaky.keys == ["ex-1:f:1", "ex-1:f:2", "ex-1:f:3", "ex-1:f:4"]
    # rng() == 1.0 gives the full +50% jitter on 100, 200, then 300 (capped from 400).
    assert h.delays == pytest.approx([0.15, 0.3, 0.45])
    failed = [e for e in h.sink.events if e.type is EventType.NODE_FAILED]
    assert [e.data["will_retry"] for e in failed] == [True, True, True]
    assert result.node_runs["f"].attempt == 4


async def test_retries_exhausted_fail_the_execution(h: Harness) -> None:
    wf = workflow([node("f", "t.flaky", retry=RetryPolicy(max_attempts=2))])
    result = await h.run(wf)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and "boom on attempt 2" in result.error.message
    assert result.error.details["node_id"] == "f"
    assert h.store.status("ex-1") is ExecutionStatus.FAILED


async def test_timeout_fails_the_node(h: Harness) -> None:
    wf = workflow([node("s", "t.sleep", config={"seconds": 5}, timeout_ms=20)])
    result = await h.run(wf)
    assert result.status is ExecutionStatus.FAILED
    error = result.node_runs["s"].error
    assert error is not None and error.kind == "timeout" and "20 ms" in error.message


async def test_stop_cancels_running_siblings(h: Harness) -> None:
    wf = workflow(
        [
            node("first", "t.sleep", config={"seconds": 0.01}),
            node("f", "t.flaky"),
            node("long", "t.sleep", config={"seconds": 30}),
            node("after"),
        ],
        [edge("first", "f"), edge("f", "after")],
    )
    result = await asyncio.wait_for(h.run(wf), timeout=5)
    assert result.status is ExecutionStatus.FAILED
    assert result.node_runs["long"].status is NodeStatus.CANCELLED
    assert h.sleep.cancelled == ["long"]
    assert h.store.node_run("ex-1", "long").status is NodeStatus.CANCELLED
    assert "after" not in result.node_runs or result.node_runs["after"].status is not (
        NodeStatus.SUCCEEDED
    )
    # Nothing is left running on its own.
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("node:")]


async def test_on_error_continue_fires_the_error_port(h: Harness) -> None:
    wf = workflow(
        [node("f", "t.flaky", on_error=OnError.CONTINUE), node("handler"), node("normal")],
        [edge("f", "handler", "error"), edge("f", "normal")],
    )
    result = await h.run(wf)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.node_runs["f"].status is NodeStatus.FAILED
    assert result.node_runs["normal"].status is NodeStatus.SKIPPED
    handled = result.outputs["handler"]["value"]
    assert handled["failed_node_id"] == "f" and "boom" in handled["error"]


async def test_on_error_skip_skips_downstream(h: Harness) -> None:
    wf = workflow(
        [node("f", "t.flaky", on_error=OnError.SKIP), node("after"), node("other")],
        [edge("f", "after")],
    )
    result = await h.run(wf)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.node_runs["f"].status is NodeStatus.SKIPPED
    assert result.node_runs["after"].status is NodeStatus.SKIPPED
    assert result.node_runs["other"].status is NodeStatus.SUCCEEDED


async def test_workflow_continue_on_error_runs_other_branches(h: Harness) -> None:
    wf = workflow(
        [node("f", "t.flaky"), node("after"), node("other", "t.sleep", config={"seconds": 0.01})],
        [edge("f", "after")],
        on_error=WorkflowOnError(WorkflowOnErrorKind.CONTINUE),
    )
    result = await h.run(wf)
    assert result.status is ExecutionStatus.FAILED
    assert result.node_runs["other"].status is NodeStatus.SUCCEEDED
    assert result.node_runs["after"].status is NodeStatus.SKIPPED


async def test_retry_workflow_runs_the_graph_again(h: Harness) -> None:
    wf = workflow(
        [node("a"), node("f", "t.flaky", config={"succeed_on": 2})],
        [edge("a", "f")],
        on_error=WorkflowOnError(WorkflowOnErrorKind.RETRY, max_attempts=3),
    )
    result = await h.run(wf, {"value": 1})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.flaky.attempts == [1, 2]
    assert [c for c in h.echo.calls] == [("a", 1), ("a", 2)]
    started = [e for e in h.sink.events if e.type is EventType.EXECUTION_STARTED]
    assert [e.data["attempt"] for e in started] == [1, 2]
    assert [e.seq for e in h.sink.events] == list(range(1, len(h.sink.events) + 1))


async def test_max_execution_time(h: Harness) -> None:
    wf = workflow([node("s", "t.sleep", config={"seconds": 5})], max_execution_time_ms=30)
    result = await asyncio.wait_for(h.run(wf), timeout=5)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.kind == "timeout"


# -- control ------------------------------------------------------------------------------


async def test_cancel_stops_a_running_execution(h: Harness) -> None:
    wf = workflow(
        [node("s", "t.sleep", config={"seconds": 30}), node("after")], [edge("s", "after")]
    )
    control = ExecutionControl()
    task = asyncio.create_task(h.run(wf, control=control))
    await h.sink.wait_for(EventType.NODE_STARTED)
    control.cancel("user asked")
    result = await asyncio.wait_for(task, timeout=5)
    assert result.status is ExecutionStatus.CANCELLED
    assert result.node_runs["s"].status is NodeStatus.CANCELLED
    assert "after" not in result.node_runs
    assert h.store.status("ex-1") is ExecutionStatus.CANCELLED


async def test_pause_holds_new_nodes_until_resume(h: Harness) -> None:
    wf = workflow(
        [node("s", "t.sleep", config={"seconds": 0.01}), node("after")], [edge("s", "after")]
    )
    control = ExecutionControl()
    task = asyncio.create_task(h.run(wf, control=control))
    await h.sink.wait_for(EventType.NODE_STARTED)
    control.pause()
    await h.sink.wait_for(lambda e: e.type is EventType.NODE_FINISHED and e.node_id == "s")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    assert h.echo.calls == []
    assert h.store.status("ex-1") is ExecutionStatus.PAUSED
    control.resume()
    result = await asyncio.wait_for(task, timeout=5)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.echo.calls == [("after", 1)]
    statuses = [e.data["status"] for e in h.sink.events if e.type is EventType.EXECUTION_STATUS]
    assert statuses == ["paused", "running"]


async def test_approval_waits_and_resumes_with_the_decision(h: Harness) -> None:
    wf = workflow(
        [node("a"), node("ok", "t.approve"), node("yes"), node("no")],
        [edge("a", "ok"), edge("ok", "yes", "approved"), edge("ok", "no", "rejected")],
    )
    first = await h.run(wf, {"value": 5})
    assert first.status is ExecutionStatus.WAITING
    assert first.node_runs["ok"].status is NodeStatus.WAITING
    assert h.store.status("ex-1") is ExecutionStatus.WAITING
    requested = [e for e in h.sink.events if e.type is EventType.APPROVAL_REQUESTED]
    assert requested[0].data["message"] == "please look"

    runs = dict(first.node_runs)
    runs["ok"] = replace(runs["ok"], decision=ApprovalDecision(True, by="ann"))
    resume = ResumeState(node_runs=runs, next_seq=first.next_seq, started_at=first.started_at)
    second = await h.run(wf, {"value": 5}, resume=resume, execution_id="ex-1")
    assert second.status is ExecutionStatus.SUCCEEDED
    assert second.outputs == {"yes": {"value": 5}}
    assert second.node_runs["no"].status is NodeStatus.SKIPPED
    assert [c[0] for c in h.echo.calls] == ["a", "yes"]  # "a" did not run again
    resolved = [e for e in h.sink.events if e.type is EventType.APPROVAL_RESOLVED]
    assert resolved[0].data == {"approved": True, "by": "ann", "comment": None}


async def test_needs_approval_rejected_fails_the_node(h: Harness) -> None:
    wf = workflow([node("a", needs_approval=True)])
    first = await h.run(wf, {"value": 1})
    assert first.status is ExecutionStatus.WAITING
    runs = {
        "a": replace(first.node_runs["a"], decision=ApprovalDecision(False, by="bob", comment="no"))
    }
    second = await h.run(
        wf, {"value": 1}, resume=ResumeState(runs, first.next_seq), execution_id="ex-1"
    )
    assert second.status is ExecutionStatus.FAILED
    error = second.node_runs["a"].error
    assert error is not None and error.kind == "rejected" and "bob: no" in error.message


async def test_resume_after_a_crash_skips_finished_and_reruns_running(h: Harness) -> None:
    wf = workflow([node("a"), node("b"), node("c")], [edge("a", "b"), edge("b", "c")])
    prior = {
        "a": NodeRun("ex-1", "a", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": "A"}),
        "b": NodeRun("ex-1", "b", NodeStatus.RUNNING, attempt=1),
    }
    result = await h.run(wf, {"value": "in"}, resume=ResumeState(prior, next_seq=40))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.echo.calls == [("b", 2), ("c", 1)]
    assert result.outputs == {"c": {"value": "A"}}
    assert h.sink.events[0].seq == 40
    assert EventType.EXECUTION_STARTED not in [e.type for e in h.sink.events]


async def test_resume_never_reruns_a_chain_of_finished_nodes(h: Harness) -> None:
    wf = workflow(
        [node("a"), node("b"), node("c"), node("d")],
        [edge("a", "b"), edge("b", "c"), edge("c", "d")],
    )
    prior = {
        "a": NodeRun("ex-1", "a", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": "A"}),
        "b": NodeRun("ex-1", "b", NodeStatus.SUCCEEDED, attempt=1, outputs={"value": "B"}),
        "c": NodeRun("ex-1", "c", NodeStatus.RUNNING, attempt=1),
    }
    result = await h.run(wf, {"value": "in"}, resume=ResumeState(prior, next_seq=9))
    assert result.status is ExecutionStatus.SUCCEEDED
    assert h.echo.calls == [("c", 2), ("d", 1)]
    assert result.outputs == {"d": {"value": "B"}}


async def test_simulate_uses_pinned_output_or_dry_run(h: Harness) -> None:
    wf = workflow(
        [
            node("pinned", "t.effect", config={"pinned_output": {"value": "pin"}}),
            node("dry", "t.effect"),
        ]
    )
    result = await h.run(wf, mode=ExecutionMode.SIMULATE)
    assert result.outputs == {"pinned": {"value": "pin"}, "dry": {"value": {"dry_run": True}}}
    assert h.effect.touched == 0
    result = await h.run(wf)
    assert h.effect.touched == 2


async def test_filters_mark_the_node_filtered(h: Harness) -> None:
    flt = [{"field": "{{ $input.value }}", "operator": "gt", "value": 10}]
    wf = workflow([node("a", filters=flt), node("b")], [edge("a", "b")])
    result = await h.run(wf, {"value": 3})
    assert result.node_runs["a"].status is NodeStatus.FILTERED
    assert result.node_runs["b"].status is NodeStatus.SKIPPED
    result = await h.run(wf, {"value": 30})
    assert result.node_runs["b"].status is NodeStatus.SUCCEEDED


async def test_node_events_and_popups_are_ordered_events(h: Harness) -> None:
    result = await h.run(workflow([node("t", "t.talk")]))
    assert result.status is ExecutionStatus.SUCCEEDED
    talk = [e for e in h.sink.events if e.node_id == "t"]
    assert [e.type for e in talk] == [
        EventType.NODE_STARTED,
        EventType.NODE_EVENT,
        EventType.NODE_EVENT,
        EventType.DEBUG_POPUP,
        EventType.NODE_FINISHED,
    ]
    assert talk[2].data == {"kind": "progress", "message": "half", "percent": 50}
    assert talk[3].data == {"title": "T", "content": {"a": 1}}


async def test_disabled_component_fails_with_a_clear_error(h: Harness) -> None:
    h.executor.services.disabled_types = frozenset({"t.echo"})
    result = await h.run(workflow([node("a")]))
    assert result.status is ExecutionStatus.FAILED
    error = result.node_runs["a"].error
    assert error is not None and error.kind == "disabled" and "t.echo" in error.message


async def test_subworkflow_runs_a_child_execution(h: Harness) -> None:
    child = Workflow(
        id="child", nodes=(node("c", config={"value": "{{ $args.x * 2 }}"}),), version=1
    )

    async def load(workflow_id: str) -> Workflow | None:
        return child if workflow_id == "child" else None

    h.executor.services.load_workflow = load

    class Call:
        manifest = NodeManifest(
            type="t.call", category="test", description="call", outputs=(PortSpec("value"),)
        )

        async def run(self, ctx: NodeContext) -> NodeOutput:
            assert ctx.services.run_subworkflow is not None
            out = await ctx.services.run_subworkflow(ctx.config["id"], {"x": 21}, ctx)
            return {"value": out}

    h.registry.register(Call())
    result = await h.run(workflow([node("call", "t.call", config={"id": "child"})]))
    assert result.outputs == {"call": {"value": {"c": {"value": 42}}}}
    missing = await h.run(workflow([node("call", "t.call", config={"id": "nope"})]))
    assert missing.status is ExecutionStatus.FAILED
    assert "not found" in missing.error.message
