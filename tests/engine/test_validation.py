"""Validation: every problem at once, each naming its node or edge."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest

from runnel.engine.expressions import ExpressionEngine
from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    PortSpec,
)
from runnel.engine.registry import BUILTIN_FAMILIES, NodeRegistry, default_registry
from runnel.engine.validation import (
    CODES,
    Problem,
    ValidationError,
    ensure_valid,
    validate,
)
from runnel.model.workflow import (
    Edge,
    Node,
    RetryPolicy,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowOnError,
    WorkflowOnErrorKind,
    WorkflowSettings,
)


@dataclass(frozen=True)
class FakeType:
    manifest: NodeManifest

    async def run(self, ctx: NodeContext) -> NodeOutput:
        return {}


def _case_ports(config: Mapping[str, Any]) -> tuple[str, ...]:
    cases = config.get("cases", [])
    return (*(str(case["port"]) for case in cases), "default")


FAKES = NodeRegistry(
    [
        FakeType(
            NodeManifest(
                "fake.source",
                "test",
                "emits data",
                aliases=("source",),
                config=(ConfigField("data"),),
                outputs=(PortSpec("data"),),
            )
        ),
        FakeType(
            NodeManifest(
                "fake.fetch",
                "test",
                "a typed config",
                config=(
                    ConfigField("url", FieldType.STRING, required=True),
                    ConfigField("method", FieldType.STRING, enum=("GET", "POST")),
                    ConfigField("timeout_ms", FieldType.INTEGER, minimum=1, maximum=60_000),
                    ConfigField("ratio", FieldType.NUMBER, minimum=0, maximum=1),
                    ConfigField("verbose", FieldType.BOOLEAN),
                    ConfigField("headers", FieldType.OBJECT),
                    ConfigField("tags", FieldType.ARRAY),
                    ConfigField("body"),
                ),
                inputs=(PortSpec("url"), PortSpec("body")),
                outputs=(PortSpec("status"), PortSpec("body")),
            )
        ),
        FakeType(
            NodeManifest(
                "fake.pass",
                "test",
                "value in, value out",
                config=(ConfigField("values", FieldType.OBJECT),),
                inputs=(PortSpec("value"),),
                outputs=(PortSpec("value"),),
            )
        ),
        FakeType(
            NodeManifest(
                "fake.merge",
                "test",
                "any input port",
                inputs=(PortSpec("value"),),
                outputs=(PortSpec("value"),),
                dynamic_inputs=True,
            )
        ),
        FakeType(
            NodeManifest(
                "fake.switch",
                "test",
                "one port per case",
                config=(ConfigField("cases", FieldType.ARRAY, required=True),),
                inputs=(PortSpec("value"),),
                outputs=(PortSpec("default"),),
                output_ports_for=_case_ports,
            )
        ),
    ]
)


def node(node_id: str, type_: str = "fake.pass", **kwargs: Any) -> Node:
    return Node(id=node_id, type=type_, **kwargs)


def edge(edge_id: str, source: str, target: str, sp: str = "value", tp: str = "value") -> Edge:
    return Edge(id=edge_id, source=source, target=target, source_port=sp, target_port=tp)


def workflow(*nodes: Node, edges: tuple[Edge, ...] = (), **kwargs: Any) -> Workflow:
    return Workflow(id="wf", nodes=nodes, edges=edges, **kwargs)


def codes(problems: list[Problem]) -> list[str]:
    return [problem.code for problem in problems]


def only(problems: list[Problem], code: str) -> Problem:
    matching = [problem for problem in problems if problem.code == code]
    assert len(matching) == 1, problems
    return matching[0]


def test_a_valid_workflow_has_no_problems() -> None:
    wf = workflow(
        node("src", "source", config={"data": {"a": 1}}),
        node("fetch", "fake.fetch", config={"url": "{{ $node.src.data.url }}", "method": "GET"}),
        node("log", config={"values": {"n": "{{ $input.value + 1 }}"}, "_note": "x"}),
        node("m", "fake.merge"),
        edges=(
            edge("e1", "src", "fetch", "data", "url"),
            edge("e2", "fetch", "log", "body", "value"),
            edge("e3", "log", "m", "value", "anything"),
            edge("e4", "fetch", "m", "error", "failures"),
        ),
    )
    assert validate(wf, FAKES) == []
    ensure_valid(wf, FAKES)


class TestIds:
    def test_empty_and_duplicate_node_ids(self) -> None:
        wf = workflow(node(""), node("a"), node("a"), node("a"))
        problems = validate(wf, FAKES)
        assert codes(problems) == ["empty_node_id", "duplicate_node_id"]
        assert problems[1].node_id == "a"
        assert "'a'" in problems[1].message

    def test_duplicate_and_empty_edge_ids(self) -> None:
        wf = workflow(
            node("a"),
            node("b"),
            node("c"),
            edges=(edge("e", "a", "b"), edge("e", "b", "c"), edge("", "a", "c")),
        )
        problems = validate(wf, FAKES)
        assert codes(problems) == ["duplicate_edge_id", "empty_edge_id"]
        assert problems[0].edge_id == "e"


class TestEdges:
    def test_unknown_nodes_at_either_end(self) -> None:
        wf = workflow(node("fetch_zen"), edges=(edge("e1", "fetch_zne", "nowhere"),))
        problems = validate(wf, FAKES)
        assert codes(problems) == ["unknown_node", "unknown_node"]
        source, target = problems
        assert source.edge_id == "e1"
        assert source.path == "source"
        assert "did you mean 'fetch_zen'" in source.message
        assert target.path == "target"
        assert "'nowhere'" in target.message

    def test_unknown_output_and_input_ports(self) -> None:
        wf = workflow(
            node("f", "fake.fetch", config={"url": "u"}),
            node("p"),
            edges=(edge("e1", "f", "p", "stats", "value"), edge("e2", "p", "f", "value", "uri")),
        )
        problems = validate(wf, FAKES)
        assert codes(problems) == ["unknown_port", "unknown_port", "cycle"]
        out, into = problems[0], problems[1]
        assert (out.edge_id, out.node_id, out.path) == ("e1", "f", "source_port")
        assert "no output port 'stats'" in out.message
        assert "did you mean 'status'" in out.message
        assert (into.edge_id, into.node_id, into.path) == ("e2", "f", "target_port")
        assert "no input port 'uri'" in into.message

    def test_node_without_ports_says_so(self) -> None:
        wf = workflow(node("p"), node("s", "source"), edges=(edge("e1", "p", "s"),))
        problem = only(validate(wf, FAKES), "unknown_port")
        assert "(it has none)" in problem.message

    def test_ports_listed_when_nothing_is_close(self) -> None:
        wf = workflow(
            node("f", "fake.fetch", config={"url": "u"}),
            node("p"),
            edges=(edge("e1", "f", "p", "zzz"),),
        )
        assert "(ports: 'status', 'body')" in only(validate(wf, FAKES), "unknown_port").message

    def test_dynamic_inputs_and_error_port_accepted(self) -> None:
        wf = workflow(
            node("a"),
            node("m", "fake.merge"),
            edges=(edge("e1", "a", "m", "value", "left"), edge("e2", "a", "m", "error", "right")),
        )
        assert validate(wf, FAKES) == []

    def test_dynamic_outputs_follow_the_config(self) -> None:
        switch = node("s", "fake.switch", config={"cases": [{"port": "big"}, {"port": "small"}]})
        wf = workflow(
            switch,
            node("a"),
            node("b"),
            edges=(edge("e1", "s", "a", "big"), edge("e2", "s", "b", "huge")),
        )
        problem = only(validate(wf, FAKES), "unknown_port")
        assert problem.edge_id == "e2"
        assert "'huge'" in problem.message

    def test_dynamic_outputs_not_checked_when_the_config_holds_expressions(self) -> None:
        switch = node("s", "fake.switch", config={"cases": "{{ $args.cases }}"})
        wf = workflow(switch, node("a"), edges=(edge("e1", "s", "a", "anything"),))
        assert validate(wf, FAKES) == []

    def test_port_function_failure_is_not_a_port_problem(self) -> None:
        switch = node("s", "fake.switch", config={"cases": [{"no_port": 1}]})
        wf = workflow(switch, node("a"), edges=(edge("e1", "s", "a", "x"),))
        assert validate(wf, FAKES) == []

    def test_edges_of_unknown_types_skip_port_checks(self) -> None:
        wf = workflow(node("x", "nope.type"), node("a"), edges=(edge("e1", "x", "a", "p", "q"),))
        problems = validate(wf, FAKES)
        assert codes(problems) == ["unknown_node_type", "unknown_port"]
        assert problems[1].path == "target_port"


class TestTypes:
    def test_unknown_type_suggests_close_names(self) -> None:
        problem = only(validate(workflow(node("n", "fake.fetc")), FAKES), "unknown_node_type")
        assert problem.node_id == "n"
        assert problem.path == "type"
        assert "unknown node type 'fake.fetc'" in problem.message
        assert "did you mean 'fake.fetch'" in problem.message

    def test_unknown_type_without_close_names(self) -> None:
        problem = only(validate(workflow(node("n", "zzzz")), FAKES), "unknown_node_type")
        assert problem.message == "unknown node type 'zzzz'"

    def test_aliases_are_known(self) -> None:
        assert validate(workflow(node("n", "source")), FAKES) == []


class TestCycles:
    def test_cycle_names_its_nodes_in_order(self) -> None:
        wf = workflow(
            node("start"),
            node("a"),
            node("b"),
            node("c"),
            node("end"),
            edges=(
                edge("e0", "start", "a"),
                edge("e1", "a", "b"),
                edge("e2", "b", "c"),
                edge("e3", "c", "a"),
                edge("e4", "c", "end"),
            ),
        )
        problem = only(validate(wf, FAKES), "cycle")
        assert problem.node_id == "a"
        assert "'a' -> 'b' -> 'c' -> 'a'" in problem.message

    def test_self_loop_and_separate_cycles(self) -> None:
        wf = workflow(
            node("x"),
            node("y"),
            node("z"),
            node("w"),
            edges=(edge("e1", "x", "x"), edge("e2", "y", "z"), edge("e3", "z", "y")),
        )
        problems = [p for p in validate(wf, FAKES) if p.code == "cycle"]
        assert sorted(p.message for p in problems) == [
            "the graph has a cycle: 'x' -> 'x'; a workflow must be acyclic",
            "the graph has a cycle: 'y' -> 'z' -> 'y'; a workflow must be acyclic",
        ]

    def test_shortest_cycle_through_the_first_node(self) -> None:
        # a -> b -> c -> d -> a and a shortcut c -> a: reports a -> b -> c -> a.
        wf = workflow(
            *(node(n) for n in "abcd"),
            edges=(
                edge("1", "a", "b"),
                edge("2", "b", "c"),
                edge("3", "c", "d"),
                edge("4", "d", "a"),
                edge("5", "c", "a"),
            ),
        )
        assert "'a' -> 'b' -> 'c' -> 'a';" in only(validate(wf, FAKES), "cycle").message

    def test_long_chain_is_fine_and_fast(self) -> None:
        count = 5000
        nodes = [node(f"n{i}") for i in range(count)]
        edges = tuple(edge(f"e{i}", f"n{i}", f"n{i + 1}") for i in range(count - 1))
        assert validate(workflow(*nodes, edges=edges), FAKES) == []
        looped = (*edges, edge("back", f"n{count - 1}", "n0"))
        problem = only(validate(workflow(*nodes, edges=looped), FAKES), "cycle")
        assert problem.message.count("->") == count


class TestConfig:
    def fetch(self, **config: Any) -> list[Problem]:
        return validate(workflow(node("f", "fake.fetch", config=config)), FAKES)

    def test_required_missing(self) -> None:
        problem = only(self.fetch(), "missing_config")
        assert (problem.node_id, problem.path) == ("f", "config.url")
        assert "'url' is required" in problem.message
        assert only(self.fetch(url=None), "missing_config").path == "config.url"

    def test_unknown_keys_with_a_suggestion(self) -> None:
        problems = self.fetch(url="u", methd="GET", whatever=1, pinned_output={}, _ui={"x": 1})
        assert codes(problems) == ["unknown_config_key", "unknown_config_key"]
        assert problems[0].path == "config.methd"
        assert "did you mean 'method'" in problems[0].message
        assert "fake.fetch accepts 'url', 'method'" in problems[1].message

    def test_unknown_key_on_a_type_without_config(self) -> None:
        problems = validate(workflow(node("m", "fake.merge", config={"x": 1})), FAKES)
        assert "fake.merge takes no config" in only(problems, "unknown_config_key").message

    @pytest.mark.parametrize(
        ("key", "value", "fragment"),
        [
            ("url", 5, "must be a string, got the number 5"),
            ("timeout_ms", "10", "must be an integer, got the string '10'"),
            ("timeout_ms", 1.5, "must be an integer"),
            ("timeout_ms", True, "must be an integer, got the boolean true"),
            ("ratio", "x", "must be a number"),
            ("ratio", False, "must be a number"),
            ("ratio", float("nan"), "must be a number"),
            ("verbose", 1, "must be true or false"),
            ("headers", [1], "must be an object, got an array"),
            ("tags", {"a": 1}, "must be an array, got an object"),
        ],
    )
    def test_wrong_types(self, key: str, value: Any, fragment: str) -> None:
        problem = only(self.fetch(**{"url": "u", key: value}), "config_type")
        assert problem.path == f"config.{key}"
        assert fragment in problem.message

    @pytest.mark.parametrize(
        ("key", "value", "code", "fragment"),
        [
            ("method", "PUT", "config_enum", "must be one of 'GET', 'POST', got 'PUT'"),
            ("timeout_ms", 0, "config_range", "must be at least 1, got 0"),
            ("timeout_ms", 60_001, "config_range", "must be at most 60000"),
            ("ratio", 1.5, "config_range", "must be at most 1, got 1.5"),
        ],
    )
    def test_enum_and_range(self, key: str, value: Any, code: str, fragment: str) -> None:
        problem = only(self.fetch(url="u", **{key: value}), code)
        assert fragment in problem.message

    @pytest.mark.parametrize(
        "config",
        [
            {"url": "u", "timeout_ms": 5.0, "ratio": 1, "verbose": False, "tags": (), "body": None},
            {"url": "{{ $args.url }}", "timeout_ms": "{{ $args.t }}", "method": "{{ $args.m }}"},
            {"url": "u", "headers": {"a": "{{ $vars.X }}"}, "tags": ["{{ 1 }}"], "body": [1]},
        ],
    )
    def test_fitting_values_and_expressions(self, config: dict[str, Any]) -> None:
        assert self.fetch(**config) == []


class TestExpressions:
    def test_syntax_errors_with_their_config_path(self) -> None:
        wf = workflow(
            node(
                "p",
                config={"values": {"n": "{{ $input.value + }}", "ok": "{{ 1 }}", "s": "{% if %}"}},
            ),
            node("q", filters={"all": [{"left": "{{ $input. }}"}]}),
        )
        problems = validate(wf, FAKES)
        assert codes(problems) == ["expression_syntax"] * 3
        assert [(p.node_id, p.path) for p in problems] == [
            ("p", "config.values.n"),
            ("p", "config.values.s"),
            ("q", "filters.all[0].left"),
        ]
        assert "in {{ $input.value + }}" in problems[0].message

    def test_expressions_checked_even_for_unknown_types(self) -> None:
        problems = validate(workflow(node("x", "nope", config={"a": "{{ ( }}"})), FAKES)
        assert codes(problems) == ["unknown_node_type", "expression_syntax"]

    def test_unknown_node_references(self) -> None:
        wf = workflow(
            node("fetch", "fake.fetch", name="Fetch Zen", config={"url": "u"}),
            node(
                "p",
                config={
                    "values": {
                        "a": "{{ $node.fetch.body }}",
                        "b": "{{ $node['Fetch Zen'].body }}",
                        "c": "{{ $node.fecth.body }} {{ $node.fecth.status }}",
                        "d": "{{ $node[$args.which].body }}",
                    }
                },
            ),
        )
        problem = only(validate(wf, FAKES), "unknown_node_reference")
        assert (problem.node_id, problem.path) == ("p", "config.values.c")
        assert "$node.fecth refers to no node" in problem.message
        assert "did you mean 'fetch'" in problem.message

    def test_custom_engine_is_used(self) -> None:
        engine = ExpressionEngine(names=None)
        wf = workflow(node("p", config={"values": {"a": "{{ $steps.x }}"}}))
        assert validate(wf, FAKES, engine) == []
        assert codes(validate(wf, FAKES)) == ["expression_syntax"]


class TestLimits:
    def test_node_timeout_and_retry(self) -> None:
        wf = workflow(
            node("a", timeout_ms=-1),
            node(
                "b",
                timeout_ms=0,
                retry=RetryPolicy(
                    max_attempts=0, delay_ms=-5, backoff_multiplier=-1, max_delay_ms=-1, jitter=2
                ),
            ),
        )
        problems = validate(wf, FAKES)
        assert [(p.code, p.node_id, p.path) for p in problems] == [
            ("invalid_timeout", "a", "timeout_ms"),
            ("invalid_retry", "b", "retry.max_attempts"),
            ("invalid_retry", "b", "retry.delay_ms"),
            ("invalid_retry", "b", "retry.backoff_multiplier"),
            ("invalid_retry", "b", "retry.max_delay_ms"),
            ("invalid_retry", "b", "retry.jitter"),
        ]

    def test_settings(self) -> None:
        settings = WorkflowSettings(
            max_parallel_nodes=0,
            max_execution_time_ms=-1,
            on_error=WorkflowOnError(WorkflowOnErrorKind.RETRY, max_attempts=0),
        )
        problems = validate(workflow(node("a"), settings=settings), FAKES)
        assert [p.path for p in problems] == [
            "settings.max_parallel_nodes",
            "settings.max_execution_time_ms",
            "settings.on_error.max_attempts",
        ]
        assert all(p.code == "invalid_setting" for p in problems)

    def test_triggers(self) -> None:
        triggers = (
            Trigger("t1", TriggerKind.CRON, {"expression": "*/5 * * * *"}),
            Trigger("t1", TriggerKind.MANUAL),
            Trigger("t2", TriggerKind.WEBHOOK, {"path": " "}),
            Trigger("t3", TriggerKind.EVENT, {}),
        )
        problems = validate(workflow(node("a"), triggers=triggers), FAKES)
        assert [(p.code, p.path) for p in problems] == [
            ("duplicate_trigger_id", "triggers[1]"),
            ("invalid_trigger", "triggers[2].path"),
            ("invalid_trigger", "triggers[3].event_type"),
        ]


def test_every_problem_reported_at_once() -> None:
    wf = workflow(
        node("a", "fake.fech", config={"url": 1}),
        node("a"),
        node("b", "fake.fetch", config={"method": "PUT", "x": "{{ 1 + }}"}, timeout_ms=-1),
        node("c"),
        edges=(
            edge("e1", "b", "c", "nope"),
            edge("e1", "c", "ghost"),
            edge("e3", "c", "b", "value", "url"),
            edge("e4", "b", "c", "body"),
        ),
        settings=WorkflowSettings(max_parallel_nodes=0),
    )
    problems = validate(wf, FAKES)
    assert sorted(set(codes(problems))) == sorted(
        {
            "unknown_node_type",
            "duplicate_node_id",
            "unknown_config_key",
            "missing_config",
            "config_enum",
            "expression_syntax",
            "invalid_timeout",
            "unknown_port",
            "duplicate_edge_id",
            "unknown_node",
            "cycle",
            "invalid_setting",
        }
    )
    assert set(codes(problems)) <= set(CODES)
    for problem in problems:
        assert problem.node_id is not None or problem.edge_id is not None or problem.path


def test_problem_and_error_text() -> None:
    problem = Problem(
        "config_type", "config 'url' must be a string", node_id="f", path="config.url"
    )
    assert str(problem) == "node 'f' config.url: config 'url' must be a string"
    assert str(Problem("cycle", "loop", edge_id="e")) == "edge 'e': loop"
    assert str(Problem("x", "bare")) == "bare"
    wf = workflow(node("a", "nope"), node("b", timeout_ms=-1))
    with pytest.raises(ValidationError) as info:
        ensure_valid(wf, FAKES)
    error = info.value
    assert len(error.problems) == 2
    lines = str(error).splitlines()
    assert lines[0] == "workflow 'wf' is invalid (2 problems):"
    assert lines[1].startswith("  - node 'a' type: unknown node type 'nope'")
    assert lines[1].endswith("[unknown_node_type]")
    assert lines[2].endswith("[invalid_timeout]")
    single = ValidationError([problem])
    assert str(single).splitlines()[0] == "workflow is invalid (1 problem):"


def _builtins_available() -> bool:
    try:
        for name in BUILTIN_FAMILIES:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    return default_registry()


@pytest.mark.skipif(not _builtins_available(), reason="built-in node families not written yet")
class TestBuiltinRegistry:
    def zen(self) -> Workflow:
        return workflow(
            node("fetch", "http.request", config={"method": "GET"}),
            node("log", "debug.log"),
            edges=(edge("e1", "fetch", "log", "body", "message"),),
        )

    def test_seed_shape_is_valid(self, registry: NodeRegistry) -> None:
        assert validate(self.zen(), registry) == []

    def test_broken_seed_shape(self, registry: NodeRegistry) -> None:
        wf = self.zen()
        broken = replace(
            wf,
            nodes=(replace(wf.nodes[0], type="http.reqest"), replace(wf.nodes[1], config={"x": 1})),
            edges=(edge("e1", "fetch", "log", "body", "msg"),),
        )
        problems = validate(broken, registry)
        assert codes(problems) == ["unknown_node_type", "unknown_config_key", "unknown_port"]
        assert "did you mean 'http.request'" in problems[0].message

    def test_every_builtin_type_with_its_required_config(self, registry: NodeRegistry) -> None:
        samples: dict[FieldType, Any] = {
            FieldType.STRING: "x",
            FieldType.NUMBER: 1,
            FieldType.INTEGER: 1,
            FieldType.BOOLEAN: True,
            FieldType.OBJECT: {},
            FieldType.ARRAY: [],
            FieldType.ANY: "{{ $input }}",
        }
        nodes = []
        for manifest in registry.manifests():
            config = {
                field.name: field.enum[0] if field.enum else samples[field.type]
                for field in manifest.config
                if field.required
            }
            nodes.append(node(manifest.type.replace(".", "_"), manifest.type, config=config))
        problems = validate(workflow(*nodes), registry)
        assert [p for p in problems if p.code != "config_range"] == []
