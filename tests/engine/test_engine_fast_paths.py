"""The executor's caches and fast paths give what the plain paths give.

- ``plan_for`` caches plans: a saved version by (id, version), an unsaved workflow by the
  object; a new version, another object or another registry or expression engine gets
  its own plan.
- Simple expressions are evaluated without the sandbox's compiled code, with the same
  values and the same errors.
- The frozen model classes made per node have a faster ``__init__`` with the same
  signature and behaviour.
- Checkpoints held in memory or queued for the end of a loop turn are merged as before.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from runnel.engine.executor import Executor, _Batch
from runnel.engine.expressions import ExpressionEngine, ExpressionError
from runnel.engine.node import NodeContext, NodeManifest, NodeOutput, NodeType, PortSpec
from runnel.engine.plan import clear_cache, plan_for
from runnel.engine.registry import NodeRegistry
from runnel.engine.run import RunRequest
from runnel.model.checkpoint import Checkpoint, ExecutionUpdate
from runnel.model.events import Event, EventType
from runnel.model.execution import (
    Execution,
    ExecutionStatus,
    NodeError,
    NodeRun,
    NodeStatus,
)
from runnel.model.workflow import Edge, Node, Workflow
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink

# -- plan cache ---------------------------------------------------------------------------


class Add:
    """Adds ``config.step`` to the ``value`` input."""

    manifest = NodeManifest(
        type="test.add",
        category="test",
        description="add",
        inputs=(PortSpec("value"),),
        outputs=(PortSpec("value"),),
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        return {"value": (ctx.inputs.get("value") or 0) + ctx.config.get("step", 1)}


class Wrapper:
    """A wrapper that hands the wrapped type for nodes without ``extra["wrap"]``."""

    def __init__(self, inner: NodeType) -> None:
        self.inner = inner
        self.manifest = inner.manifest
        self.calls = 0

    def for_node(self, node: Node) -> NodeType:
        return self if node.extra.get("wrap") else self.inner

    async def run(self, ctx: NodeContext) -> NodeOutput:
        self.calls += 1
        return await self.inner.run(ctx)


def chain(step: int, *, version: int = 0, length: int = 3) -> Workflow:
    nodes = tuple(
        Node(f"n{i}", "test.add", config={"step": "{{ " + str(step) + " }}"}) for i in range(length)
    )
    edges = tuple(Edge(f"e{i}", f"n{i}", f"n{i + 1}") for i in range(length - 1))
    return Workflow(id="wf", name="wf", nodes=nodes, edges=edges, version=version)


@pytest.fixture(autouse=True)
def fresh_plans() -> None:
    clear_cache()


def test_a_saved_version_is_planned_once() -> None:
    registry = NodeRegistry([Add()])
    engine = ExpressionEngine()
    workflow = chain(1, version=1)
    assert plan_for(workflow, registry, engine) is plan_for(workflow, registry, engine)


def test_a_new_version_gets_a_new_plan() -> None:
    registry = NodeRegistry([Add()])
    engine = ExpressionEngine()
    first = plan_for(chain(1, version=1), registry, engine)
    second = plan_for(chain(2, version=2), registry, engine)
    assert second is not first
    assert second.workflow.version == 2
    assert second.configs["n0"].render({}) == {"step": 2}


def test_the_same_version_from_elsewhere_is_not_shared() -> None:
    # Two stores may hold different workflows under one id and version.
    registry = NodeRegistry([Add()])
    engine = ExpressionEngine()
    one = plan_for(chain(1, version=1), registry, engine)
    other = plan_for(chain(5, version=1), registry, engine)
    assert other is not one
    assert other.configs["n0"].render({}) == {"step": 5}


def test_an_unsaved_workflow_is_planned_once_per_object() -> None:
    registry = NodeRegistry([Add()])
    engine = ExpressionEngine()
    workflow = chain(1)
    plan = plan_for(workflow, registry, engine)
    assert plan_for(workflow, registry, engine) is plan
    changed = dataclasses.replace(workflow, nodes=chain(3).nodes)
    assert plan_for(changed, registry, engine) is not plan
    assert plan_for(changed, registry, engine).configs["n0"].render({}) == {"step": 3}


def test_another_registry_or_engine_gets_its_own_plan() -> None:
    workflow = chain(1, version=1)
    registry = NodeRegistry([Add()])
    engine = ExpressionEngine()
    plan = plan_for(workflow, registry, engine)
    other_registry = NodeRegistry([Add()])
    assert plan_for(workflow, other_registry, engine) is not plan
    assert plan_for(workflow, registry, ExpressionEngine()) is not plan


async def test_runs_of_new_versions_use_their_own_config() -> None:
    executor = Executor(NodeRegistry([Add()]), MemoryCheckpointStore(), RecordingEventSink())
    results = []
    for i, (version, step) in enumerate(((1, 1), (2, 10), (1, 1))):
        result = await executor.run(RunRequest(f"x{i}", chain(step, version=version)))
        results.append(result.outputs)
    assert results == [{"n2": {"value": 3}}, {"n2": {"value": 30}}, {"n2": {"value": 3}}]


async def test_a_type_may_hand_a_plainer_one_per_node() -> None:
    wrapper = Wrapper(Add())
    registry = NodeRegistry([wrapper])
    nodes = (
        Node("plain", "test.add", config={"step": 1}),
        Node("wrapped", "test.add", config={"step": 1}, extra={"wrap": True}),
    )
    workflow = Workflow(
        id="w", name="w", nodes=nodes, edges=(Edge("e", "plain", "wrapped"),), version=1
    )
    plan = plan_for(workflow, registry, ExpressionEngine())
    assert plan.types["plain"] is wrapper.inner
    assert plan.types["wrapped"] is wrapper
    executor = Executor(registry, MemoryCheckpointStore(), RecordingEventSink())
    result = await executor.run(RunRequest("x", workflow))
    assert result.outputs == {"wrapped": {"value": 2}}
    assert wrapper.calls == 1


# -- expressions: fast path == sandbox ------------------------------------------------------

SCOPE: dict[str, Any] = {
    "input": {
        "value": {"n": 41, "f": 1.5, "s": "abc", "items": [1, 2, 3], "flag": True, "nul": None},
        "big": 2**60,
        "proxy": MappingProxyType({"k": 1}),
    },
    "node": {"a": {"value": {"n": 2}}},
    "args": {"count": 3},
    "vars": {},
    "prev": {"value": 7},
    "execution": {"id": "ex-1"},
    "kv": {},
}

EXPRESSIONS = [
    "$input.value.n + 1",
    "$input.value.n - 1",
    "$input.value.n * 2",
    "$input.value.f * 2",
    "$input.value.n / 2",
    "$input.value.n // 2",
    "$input.value.n % 5",
    "$input.value.n / 0",
    "$input.value.n % 0",
    "-$input.value.n",
    "-$input.value.s",
    "$input.value.s + 'd'",
    "$input.value.s + 1",
    "$input.value.s * 3",
    "$input.value.flag + 1",
    "$input.value.nul + 1",
    "$input.value.items[1]",
    "$input.value.items[7]",
    "$input.value.items[-1]",
    "$input.value['n']",
    "$input.value.missing",
    "$input.value.missing.deeper",
    "$input.value.items.length",
    "$input.value.items",
    "$input.value",
    "$input.proxy.k",
    "$input.proxy.missing",
    "$input.value.n > 40",
    "$input.value.n == 41 and $input.value.flag",
    "$input.value.nul or 'fallback'",
    "not $input.value.flag",
    "$input.value.s < 1",
    "'yes' if $input.value.flag else 'no'",
    "$input.value.n if $input.value.nul else $input.value.f",
    "$node.a.value.n * $input.value.n",
    "$input.big * $input.big",
    "$prev.value + $args.count",
    "$input.value.n + $input.value.f",
    "1 + 2",
    "$input.value.n.bit_length",
]


def _outcome(engine: ExpressionEngine, source: str, scope: Mapping[str, Any]) -> Any:
    try:
        return ("value", engine.compile(source).render(scope))
    except ExpressionError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("source", EXPRESSIONS)
@pytest.mark.parametrize("template", ["{{ %s }}", "n={{ %s }}"])
def test_fast_path_gives_what_the_sandbox_gives(source: str, template: str) -> None:
    text = template % source
    fast = ExpressionEngine(max_int_bits=100)
    slow = ExpressionEngine(max_int_bits=100)
    compiled = slow._compile_text(text)
    for expression in compiled.expressions:  # type: ignore[union-attr]
        expression._fast = None
    got, expected = _outcome(fast, text, SCOPE), _outcome(slow, text, SCOPE)
    assert got == expected
    assert type(got[1]) is type(expected[1])


def test_simple_expressions_take_the_fast_path() -> None:
    engine = ExpressionEngine()
    for source in ("$input.value.n + 1", "$input.value['s']", "$input.value.n > 1 and 2"):
        compiled = engine._compile_text("{{ " + source + " }}")
        assert compiled.expressions[0]._fast is not None, source  # type: ignore[union-attr]
    for source in ("$input.value.items | length", "[$input.value.n]", "'a' ~ 'b'"):
        compiled = engine._compile_text("{{ " + source + " }}")
        assert compiled.expressions[0]._fast is None, source  # type: ignore[union-attr]


def test_size_limits_still_hold_on_the_fast_path() -> None:
    engine = ExpressionEngine(max_size=5, max_int_bits=64)
    scope = {"input": {"s": "abc", "n": 2**40}}
    with pytest.raises(ExpressionError, match="larger than the limit"):
        engine.compile("{{ $input.s + $input.s }}").render(scope)
    with pytest.raises(ExpressionError, match="longer than the limit"):
        engine.compile("{{ $input.n * $input.n }}").render(scope)
    assert engine.compile("{{ $input.s + 'd' }}").render(scope) == "abcd"


# -- faster __init__ of the frozen model classes ---------------------------------------------


@pytest.mark.parametrize("cls", [Event, NodeRun, NodeError, Execution, Checkpoint, ExecutionUpdate])
def test_model_classes_keep_their_signature(cls: type) -> None:
    parameters = inspect.signature(cls).parameters
    assert list(parameters) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        default = parameters[f.name].default
        if f.default is not dataclasses.MISSING:
            assert default == f.default
        elif f.default_factory is dataclasses.MISSING:
            assert default is inspect.Parameter.empty


def test_model_classes_behave_as_dataclasses() -> None:
    event = Event("x", 1, EventType.NODE_STARTED, 1.0)
    assert event == Event(execution_id="x", seq=1, type=EventType.NODE_STARTED, timestamp=1.0)
    assert event.workflow_id == "" and event.node_id is None and event.data == {}
    assert Event("x", 1, EventType.NODE_STARTED, 1.0).data is not event.data  # a fresh {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.seq = 2  # type: ignore[misc]
    assert dataclasses.replace(event, seq=3).seq == 3
    assert pickle.loads(pickle.dumps(event)) == event
    with pytest.raises(TypeError):
        Event("x", 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Event("x", 1, EventType.NODE_STARTED, 1.0, nope=1)  # type: ignore[call-arg]
    run = NodeRun("x", "n", NodeStatus.RUNNING, attempt=2, started_at=1.0, finished_at=3.0)
    assert run.duration_ms == 2000.0 and run.outputs is None
    assert Checkpoint("x", "w").node_runs == () and not Checkpoint("x", "w").discard


# -- merged checkpoints ------------------------------------------------------------------------


def test_a_batch_writes_what_its_checkpoints_would_in_turn() -> None:
    def run(node_id: str, status: NodeStatus) -> NodeRun:
        return NodeRun("x", node_id, status)

    def event(seq: int) -> Event:
        return Event("x", seq, EventType.NODE_STARTED, 0.0)

    create = Execution("x", "w", 1)
    batch = _Batch()
    batch.add(
        [run("a", NodeStatus.RUNNING)],
        [event(1)],
        ExecutionUpdate(ExecutionStatus.RUNNING, started_at=1.0),
        False,
        create,
    )
    batch.add(
        [run("b", NodeStatus.RUNNING), run("a", NodeStatus.SUCCEEDED)],
        [event(2)],
        None,
        False,
        None,
    )
    batch.add(
        [run("b", NodeStatus.SUCCEEDED)],
        [event(3)],
        ExecutionUpdate(ExecutionStatus.SUCCEEDED, finished_at=2.0),
        True,
        None,
    )
    checkpoint = batch.take("x", "w")
    assert checkpoint.create is create
    assert [(r.node_id, r.status) for r in checkpoint.node_runs] == [
        ("a", NodeStatus.SUCCEEDED),
        ("b", NodeStatus.SUCCEEDED),
    ]
    assert [e.seq for e in checkpoint.events] == [1, 2, 3]
    assert checkpoint.execution == ExecutionUpdate(
        ExecutionStatus.SUCCEEDED, started_at=1.0, finished_at=2.0
    )
    assert checkpoint.final
    assert batch.size == 0 and batch.take("x", "w").node_runs == ()


async def test_a_chain_s_node_events_keep_their_fields() -> None:
    """The per-node shortcuts (one incoming edge, the label kept in the plan, the status
    as plain text) give what the general path gives."""
    seen: list[NodeContext] = []

    class Spy(Add):
        async def run(self, ctx: NodeContext) -> NodeOutput:
            seen.append(ctx)
            return await super().run(ctx)

    registry = NodeRegistry([Spy()])
    workflow = Workflow(
        id="labels",
        name="labels",
        nodes=(
            Node("a", "test.add", name="first", config={"step": 2}),
            Node("b", "test.add", config={"step": "{{ $input.value + 1 }}"}),
        ),
        edges=(Edge("e", "a", "b"),),
    )
    sink = RecordingEventSink()
    result = await Executor(registry, MemoryCheckpointStore(), sink).run(
        RunRequest("x-labels", workflow, {})
    )
    assert result.status is ExecutionStatus.SUCCEEDED
    started = [e for e in sink.events if e.type is EventType.NODE_STARTED]
    finished = [e for e in sink.events if e.type is EventType.NODE_FINISHED]
    assert [e.data["node_name"] for e in started] == ["first", "b"]
    assert [e.data["node_name"] for e in finished] == ["first", "b"]
    assert [e.data["status"] for e in finished] == ["succeeded", "succeeded"]
    assert all(type(e.data["status"]) is str for e in finished)
    assert dict(seen[1].inputs) == {"value": 2}
    assert seen[1].arrivals == (("a", "value", 2),)
    assert seen[1].config["step"] == 3
