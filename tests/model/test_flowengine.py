"""Flow Engine wire format <-> canonical model: reading, writing, losslessness, bad shapes."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from typing import Any

import pytest

from runnel.model.flowengine import (
    EXTRA_KEY,
    FlowEngineFormatError,
    generated_edge_id,
    summary_to_flowengine,
    workflow_from_flowengine,
    workflow_to_flowengine,
)
from runnel.model.workflow import (
    DEFAULT_PORT,
    Edge,
    Node,
    OnError,
    Position,
    RetryPolicy,
    SaveHistory,
    Trigger,
    TriggerKind,
    Workflow,
    WorkflowOnError,
    WorkflowOnErrorKind,
    WorkflowSettings,
)

SEED: dict[str, Any] = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "name": "My Workflow",
    "description": "Example workflow",
    "nodes": [
        {
            "id": "node-1",
            "node_type": "http.request",
            "config": {"method": {"type": "String", "value": "GET"}},
            "position": {"x": 100, "y": 100},
        }
    ],
    "connections": [],
    "triggers": [],
    "settings": {"max_parallel_nodes": 10, "on_error": "StopWorkflow"},
}

FULL: dict[str, Any] = {
    "id": "wf-full",
    "name": "Everything",
    "description": "",
    "x-owner-note": {"anything": [1, 2]},
    "nodes": [
        {
            "id": "fetch",
            "node_type": "http.request",
            "name": "Fetch Zen",
            "config": {
                "null": {"type": "Null"},
                "bool": {"type": "Bool", "value": False},
                "int": {"type": "Number", "value": 3},
                "float": {"type": "Number", "value": 3.0},
                "text": {"type": "String", "value": "{{ $args.url }}"},
                "bytes": {"type": "Bytes", "value": [0, 255, 10]},
                "json": {"type": "Json", "value": {"raw": [1, {"type": "String"}]}},
                "array": {"type": "Array", "value": [{"type": "Number", "value": 1}, "plain"]},
                "object": {"type": "Object", "value": {"k": {"type": "Bool", "value": True}}},
                "plain_number": 10,
                "plain_list": [1, "a", None],
                "plain_object": {"headers": {"Accept": "text/plain"}},
            },
            "position": {"x": 1.5, "y": -2, "z": 9},
            "retry_policy": {
                "max_attempts": 3,
                "delay_ms": 100,
                "backoff_multiplier": 2,
                "max_delay_ms": 1000,
                "jitter": 0.1,
                "unknown": True,
            },
            "timeout_ms": 5000,
            "on_error": "continue",
            "needs_approval": True,
            "filters": {"all": [{"left": "{{ $args.x }}", "op": "eq", "right": 1}]},
            "ui": {"color": "#888"},
        },
        {"id": "log", "node_type": "debug.log", "name": None, "config": {}},
        {"id": "bare", "node_type": "data.static"},
    ],
    "connections": [
        {"from_node": "fetch", "from_port": "body", "to_node": "log", "to_port": "message"},
        {"from_node": "fetch", "from_port": "body", "to_node": "log", "to_port": "message"},
        {"id": "explicit", "from_node": "log", "from_port": "message", "to_node": "bare"},
        {"from_node": "fetch", "to_node": "bare", "to_port": None, "label": "x"},
    ],
    "triggers": [
        {"id": "m", "trigger_type": {"type": "Manual"}, "enabled": True},
        {
            "id": "c",
            "trigger_type": {"type": "Cron", "expression": "*/5 * * * *"},
            "enabled": False,
        },
        {"id": "w", "trigger_type": {"type": "Webhook", "path": "/hook"}},
        {"id": "e", "trigger_type": {"type": "Event", "event_type": "push", "extra": 1}},
    ],
    "settings": {
        "max_parallel_nodes": 4,
        "on_error": {"RetryWorkflow": {"max_attempts": 3}},
        "max_execution_time_ms": 60000,
        "save_history": "failed",
        "x-setting": "kept",
    },
}


def roundtrip(doc: dict[str, Any]) -> dict[str, Any]:
    return workflow_to_flowengine(workflow_from_flowengine(doc))


def strip_extra(workflow: Workflow) -> Workflow:
    return replace(
        workflow,
        extra={},
        nodes=tuple(replace(node, extra={}) for node in workflow.nodes),
        edges=tuple(replace(edge, extra={}) for edge in workflow.edges),
        settings=replace(workflow.settings, extra={}),
    )


class TestReading:
    def test_seed_example(self) -> None:
        wf = workflow_from_flowengine(SEED)
        assert (wf.id, wf.name, wf.description) == (SEED["id"], "My Workflow", "Example workflow")
        (node,) = wf.nodes
        assert node == Node(
            id="node-1",
            type="http.request",
            config={"method": "GET"},
            position=Position(100.0, 100.0),
            extra=node.extra,
        )
        assert wf.edges == ()
        assert wf.triggers == ()
        assert wf.settings.max_parallel_nodes == 10
        assert wf.settings.on_error == WorkflowOnError(WorkflowOnErrorKind.STOP)

    def test_every_field(self) -> None:
        wf = workflow_from_flowengine(FULL)
        fetch, log, bare = wf.nodes
        assert fetch.config == {
            "null": None,
            "bool": False,
            "int": 3,
            "float": 3.0,
            "text": "{{ $args.url }}",
            "bytes": b"\x00\xff\n",
            "json": {"raw": [1, {"type": "String"}]},
            "array": [1, "plain"],
            "object": {"k": True},
            "plain_number": 10,
            "plain_list": [1, "a", None],
            "plain_object": {"headers": {"Accept": "text/plain"}},
        }
        assert fetch.name == "Fetch Zen"
        assert fetch.position == Position(1.5, -2.0)
        assert fetch.retry == RetryPolicy(3, 100, 2.0, 1000, 0.1)
        assert (fetch.timeout_ms, fetch.on_error, fetch.needs_approval) == (
            5000,
            OnError.CONTINUE,
            True,
        )
        assert fetch.filters == FULL["nodes"][0]["filters"]
        assert (log.name, log.config, bare.config, bare.position, bare.retry) == (
            None,
            {},
            {},
            None,
            None,
        )
        assert [(e.id, e.source, e.source_port, e.target, e.target_port) for e in wf.edges] == [
            ("fetch.body->log.message", "fetch", "body", "log", "message"),
            ("fetch.body->log.message#2", "fetch", "body", "log", "message"),
            ("explicit", "log", "message", "bare", DEFAULT_PORT),
            ("fetch.value->bare.value", "fetch", DEFAULT_PORT, "bare", DEFAULT_PORT),
        ]
        assert wf.triggers == (
            Trigger("m", TriggerKind.MANUAL, {}, True),
            Trigger("c", TriggerKind.CRON, {"expression": "*/5 * * * *"}, False),
            Trigger("w", TriggerKind.WEBHOOK, {"path": "/hook"}, True),
            Trigger("e", TriggerKind.EVENT, {"event_type": "push", "extra": 1}, True),
        )
        assert strip_extra(wf).settings == WorkflowSettings(
            max_parallel_nodes=4,
            on_error=WorkflowOnError(WorkflowOnErrorKind.RETRY, 3),
            max_execution_time_ms=60000,
            save_history=SaveHistory.FAILED,
        )

    def test_minimal_document(self) -> None:
        wf = workflow_from_flowengine({"id": "x"})
        assert strip_extra(wf) == Workflow(id="x")
        assert workflow_to_flowengine(wf) == {"id": "x"}

    def test_continue_on_error_and_nulls(self) -> None:
        doc = {
            "id": "x",
            "name": None,
            "nodes": None,
            "settings": {"on_error": "ContinueOnError", "max_parallel_nodes": None},
        }
        wf = workflow_from_flowengine(doc)
        assert wf.name == ""
        assert wf.nodes == ()
        assert wf.settings.on_error.kind is WorkflowOnErrorKind.CONTINUE
        assert wf.settings.max_parallel_nodes == 10
        assert roundtrip(doc) == doc

    def test_input_is_not_shared_with_the_model(self) -> None:
        doc = copy.deepcopy(FULL)
        wf = workflow_from_flowengine(doc)
        doc["nodes"][0]["config"]["plain_list"].append("mutated")
        doc["nodes"][0]["ui"]["color"] = "red"
        assert workflow_to_flowengine(wf) == FULL
        out = workflow_to_flowengine(wf)
        out["nodes"][0]["ui"]["color"] = "blue"
        assert workflow_to_flowengine(wf) == FULL


class TestLossless:
    @pytest.mark.parametrize("doc", [SEED, FULL], ids=["seed", "full"])
    def test_round_trip_is_exact(self, doc: dict[str, Any]) -> None:
        out = roundtrip(doc)
        assert out == doc
        # Key order too, so that a client diffing the text sees nothing.
        assert json.dumps(out) == json.dumps(doc)

    def test_round_trip_is_stable(self) -> None:
        once = workflow_from_flowengine(FULL)
        twice = workflow_from_flowengine(workflow_to_flowengine(once))
        assert twice == once

    def test_random_documents_round_trip(self) -> None:
        rng = random.Random(20240115)
        for _ in range(300):
            doc = random_document(rng)
            out = roundtrip(doc)
            assert json.dumps(out, sort_keys=False) == json.dumps(doc, sort_keys=False), doc

    def test_random_canonical_workflows_round_trip(self) -> None:
        rng = random.Random(7)
        for _ in range(200):
            wf = random_workflow(rng)
            back = workflow_from_flowengine(workflow_to_flowengine(wf))
            assert strip_extra(back) == wf
            # And from then on the wire form is a fixed point.
            doc = workflow_to_flowengine(back)
            assert roundtrip(doc) == doc


class TestEdits:
    """A canonical workflow changed since it was read: the changes are written afresh."""

    def test_changed_config_values(self) -> None:
        wf = workflow_from_flowengine(FULL)
        fetch = wf.nodes[0]
        config = dict(fetch.config)
        config["int"] = 4  # was typed: stays typed
        config["plain_number"] = 11  # was plain: stays plain
        config["plain_object"] = {"type": "Bool", "value": "x"}  # plain would read as typed
        config["bytes"] = b"\x01"  # same bytes typed again
        config["new"] = "{{ $input }}"  # new keys are typed
        del config["json"]
        config["bool"] = 0  # 0 is not False: a change
        edited = replace(wf, nodes=(replace(fetch, config=config), *wf.nodes[1:]))
        out = workflow_to_flowengine(edited)["nodes"][0]["config"]
        assert out["int"] == {"type": "Number", "value": 4}
        assert out["plain_number"] == 11
        assert out["plain_object"] == {
            "type": "Object",
            "value": {
                "type": {"type": "String", "value": "Bool"},
                "value": {"type": "String", "value": "x"},
            },
        }
        assert out["bytes"] == {"type": "Bytes", "value": [1]}
        assert out["new"] == {"type": "String", "value": "{{ $input }}"}
        assert "json" not in out
        assert out["bool"] == {"type": "Number", "value": 0}
        assert out["float"] == {"type": "Number", "value": 3.0}  # untouched: as it came
        assert list(out)[-1] == "new"
        assert workflow_from_flowengine(workflow_to_flowengine(edited)).nodes[0].config == config

    def test_changed_node_fields_keep_unknown_keys(self) -> None:
        wf = workflow_from_flowengine(FULL)
        fetch = replace(
            wf.nodes[0],
            name=None,
            position=Position(3.0, 4.5),
            retry=RetryPolicy(max_attempts=5),
            timeout_ms=None,
            on_error=OnError.STOP,
            needs_approval=False,
            filters=None,
        )
        log = replace(wf.nodes[1], name="Logger", on_error=OnError.SKIP, timeout_ms=10)
        out = workflow_to_flowengine(replace(wf, nodes=(fetch, log, wf.nodes[2])))
        node = out["nodes"][0]
        assert node == {
            "id": "fetch",
            "node_type": "http.request",
            "config": FULL["nodes"][0]["config"],
            "position": {"x": 3, "y": 4.5, "z": 9},
            "retry_policy": {
                "max_attempts": 5,
                "delay_ms": 0,
                "backoff_multiplier": 1,
                "unknown": True,
            },
            "ui": {"color": "#888"},
        }
        assert out["nodes"][1] == {
            "id": "log",
            "node_type": "debug.log",
            "name": "Logger",
            "config": {},
            "timeout_ms": 10,
            "on_error": "skip",
        }

    def test_changed_settings_and_workflow_fields(self) -> None:
        wf = workflow_from_flowengine(SEED)
        settings = replace(
            wf.settings,
            on_error=WorkflowOnError(WorkflowOnErrorKind.RETRY, 2),
            save_history=SaveHistory.NONE,
        )
        out = workflow_to_flowengine(replace(wf, settings=settings, description="", name="New"))
        assert out["settings"] == {
            "max_parallel_nodes": 10,
            "on_error": {"RetryWorkflow": {"max_attempts": 2}},
            "save_history": "none",
        }
        assert (out["name"], out["description"]) == ("New", "")
        continuing = replace(wf.settings, on_error=WorkflowOnError(WorkflowOnErrorKind.CONTINUE))
        assert (
            workflow_to_flowengine(replace(wf, settings=continuing))["settings"]["on_error"]
            == "ContinueOnError"
        )

    def test_edges_without_ids_stay_without_ids(self) -> None:
        wf = workflow_from_flowengine(FULL)
        first, second, explicit, last = wf.edges
        # Dropping the first of the two repeated connections renames the second one's
        # generated id; it is written with its id from then on, so it is not lost.
        out = workflow_to_flowengine(replace(wf, edges=(second, explicit, last)))
        assert out["connections"] == [
            {**FULL["connections"][1], "id": "fetch.body->log.message#2"},
            FULL["connections"][2],
            FULL["connections"][3],
        ]
        moved = replace(last, target_port="other")
        out = workflow_to_flowengine(replace(wf, edges=(first, second, explicit, moved)))
        assert out["connections"][3] == {
            "from_node": "fetch",
            "to_node": "bare",
            "to_port": "other",
            "label": "x",
            "id": "fetch.value->bare.value",
        }
        renamed = replace(explicit, id="renamed")
        out = workflow_to_flowengine(replace(wf, edges=(first, second, renamed, last)))
        assert out["connections"][2]["id"] == "renamed"

    def test_triggers_matched_by_id(self) -> None:
        wf = workflow_from_flowengine(FULL)
        m, c, _, e = wf.triggers
        triggers = (
            replace(c, config={"expression": "0 * * * *"}),
            m,
            Trigger("new", TriggerKind.WEBHOOK, {"path": "/p"}),
            e,
        )
        out = workflow_to_flowengine(replace(wf, triggers=triggers))["triggers"]
        assert out == [
            {
                "id": "c",
                "trigger_type": {"type": "Cron", "expression": "0 * * * *"},
                "enabled": False,
            },
            FULL["triggers"][0],
            {"id": "new", "trigger_type": {"type": "Webhook", "path": "/p"}, "enabled": True},
            FULL["triggers"][3],
        ]

    def test_corrupt_saved_originals_are_ignored(self) -> None:
        wf = workflow_from_flowengine(FULL)
        fetch = replace(
            wf.nodes[0],
            extra={EXTRA_KEY: {"config": "junk", "position": 5, "retry_policy": [], "id": 3}},
        )
        settings = replace(wf.settings, extra={EXTRA_KEY: {"on_error": {"Nope": 1}}})
        broken = replace(
            wf,
            nodes=(fetch,),
            edges=(),
            triggers=(),
            settings=settings,
            extra={EXTRA_KEY: {"workflow": {"id": 5, "settings": 7}, "triggers": "x"}},
        )
        back = workflow_from_flowengine(workflow_to_flowengine(broken))
        assert strip_extra(back) == strip_extra(broken)


class TestForeign:
    """Workflows that never were Flow Engine documents (built in code or by another dialect)."""

    def test_full_form(self) -> None:
        wf = Workflow(
            id="w",
            name="n",
            nodes=(
                Node("a", "data.static", config={"data": {"x": [1, b"\x02"]}}),
                Node("b", "debug.log", name="B", position=Position(1.0, 2.0)),
            ),
            edges=(Edge("e1", "a", "b", "data", "message"),),
            extra={"flowork": {"global_loop_config": {}}},
        )
        assert workflow_to_flowengine(wf) == {
            "id": "w",
            "name": "n",
            "description": "",
            "nodes": [
                {
                    "id": "a",
                    "node_type": "data.static",
                    "config": {
                        "data": {
                            "type": "Object",
                            "value": {
                                "x": {
                                    "type": "Array",
                                    "value": [
                                        {"type": "Number", "value": 1},
                                        {"type": "Bytes", "value": [2]},
                                    ],
                                }
                            },
                        }
                    },
                },
                {
                    "id": "b",
                    "node_type": "debug.log",
                    "name": "B",
                    "config": {},
                    "position": {"x": 1, "y": 2},
                },
            ],
            "connections": [
                {
                    "from_node": "a",
                    "from_port": "data",
                    "to_node": "b",
                    "to_port": "message",
                    "id": "e1",
                }
            ],
            "triggers": [],
            "settings": {"max_parallel_nodes": 10, "on_error": "StopWorkflow"},
        }

    def test_summary(self) -> None:
        wf = workflow_from_flowengine(FULL)
        assert summary_to_flowengine(wf) == {
            "id": "wf-full",
            "name": "Everything",
            "description": "",
            "nodes": 3,
            "connections": 4,
        }


def test_generated_edge_ids() -> None:
    taken = {"a.out->b.in"}
    assert generated_edge_id("a", "out", "b", "in", taken) == "a.out->b.in#2"
    assert generated_edge_id("a", "out", "c", "in", taken) == "a.out->c.in"
    doc = {
        "id": "x",
        "connections": [
            {"from_node": "a", "from_port": "p", "to_node": "b", "to_port": "q"},
            {"id": "a.p->b.q", "from_node": "z", "from_port": "p", "to_node": "b", "to_port": "q"},
        ],
    }
    first, second = workflow_from_flowengine(doc).edges
    assert (first.id, second.id) == ("a.p->b.q#2", "a.p->b.q")
    assert roundtrip(doc) == doc


BAD: list[tuple[Any, str, str]] = [
    ([], "", "a workflow must be a JSON object, got an array"),
    ({}, "id", "missing"),
    ({"id": 5}, "id", "expected a string, got a number"),
    ({"id": "x", "name": 1}, "name", "expected a string"),
    ({"id": "x", "nodes": {}}, "nodes", "expected an array, got an object"),
    ({"id": "x", "nodes": [5]}, "nodes[0]", "expected an object, got a number"),
    ({"id": "x", "nodes": [{"node_type": "t"}]}, "nodes[0].id", "missing"),
    ({"id": "x", "nodes": [{"id": "a"}]}, "nodes[0].node_type", "missing"),
    ({"id": "x", "nodes": [{"id": None, "node_type": "t"}]}, "nodes[0].id", "expected a string"),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "config": []}]},
        "nodes[0].config",
        "expected an object",
    ),
    (
        {
            "id": "x",
            "nodes": [
                {"id": "a", "node_type": "t", "config": {"m": {"type": "String", "value": 1}}}
            ],
        },
        "nodes[0].config.m",
        "String expects a string, got a number",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "config": {"m": {"type": "Number"}}}]},
        "nodes[0].config.m",
        "needs a 'value'",
    ),
    (
        {
            "id": "x",
            "nodes": [
                {
                    "id": "a",
                    "node_type": "t",
                    "config": {
                        "m": {"type": "Array", "value": [{"type": "Bytes", "value": [300]}]}
                    },
                }
            ],
        },
        "nodes[0].config.m[0]",
        "Bytes expects an array of numbers 0..255",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "position": [1, 2]}]},
        "nodes[0].position",
        "expected an object",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "position": {"x": "1"}}]},
        "nodes[0].position.x",
        "expected a number",
    ),
    (
        {
            "id": "x",
            "nodes": [{"id": "a", "node_type": "t", "retry_policy": {"max_attempts": 1.5}}],
        },
        "nodes[0].retry_policy.max_attempts",
        "expected an integer, got 1.5",
    ),
    (
        {
            "id": "x",
            "nodes": [{"id": "a", "node_type": "t", "retry_policy": {"backoff_multiplier": True}}],
        },
        "nodes[0].retry_policy.backoff_multiplier",
        "got a boolean",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "timeout_ms": "5"}]},
        "nodes[0].timeout_ms",
        "expected a number",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "on_error": "explode"}]},
        "nodes[0].on_error",
        "unknown on_error 'explode'; expected 'stop', 'continue' or 'skip'",
    ),
    (
        {"id": "x", "nodes": [{"id": "a", "node_type": "t", "needs_approval": "yes"}]},
        "nodes[0].needs_approval",
        "expected true or false",
    ),
    ({"id": "x", "connections": [{"to_node": "b"}]}, "connections[0].from_node", "missing"),
    (
        {"id": "x", "connections": [{"from_node": "a", "to_node": "b", "to_port": 3}]},
        "connections[0].to_port",
        "expected a string",
    ),
    ({"id": "x", "connections": ["a->b"]}, "connections[0]", "expected an object"),
    ({"id": "x", "triggers": [{"trigger_type": {"type": "Manual"}}]}, "triggers[0].id", "missing"),
    ({"id": "x", "triggers": [{"id": "t"}]}, "triggers[0].trigger_type", "missing"),
    (
        {"id": "x", "triggers": [{"id": "t", "trigger_type": "Manual"}]},
        "triggers[0].trigger_type",
        "expected an object",
    ),
    (
        {"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Sometimes"}}]},
        "triggers[0].trigger_type.type",
        "unknown trigger type 'Sometimes'",
    ),
    (
        {"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Cron"}}]},
        "triggers[0].trigger_type.expression",
        "missing",
    ),
    (
        {"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Webhook", "path": 1}}]},
        "triggers[0].trigger_type.path",
        "expected a string",
    ),
    (
        {"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Manual"}, "enabled": 1}]},
        "triggers[0].enabled",
        "expected true or false",
    ),
    ({"id": "x", "settings": []}, "settings", "expected an object"),
    (
        {"id": "x", "settings": {"max_parallel_nodes": "10"}},
        "settings.max_parallel_nodes",
        "expected a number",
    ),
    (
        {"id": "x", "settings": {"on_error": "Stop"}},
        "settings.on_error",
        "unknown on_error 'Stop'; expected \"StopWorkflow\"",
    ),
    (
        {"id": "x", "settings": {"on_error": {"RetryWorkflow": 3}}},
        "settings.on_error.RetryWorkflow",
        "expected an object",
    ),
    (
        {"id": "x", "settings": {"on_error": {"RetryWorkflow": {}}}},
        "settings.on_error.RetryWorkflow.max_attempts",
        "missing",
    ),
    (
        {"id": "x", "settings": {"on_error": {"Retry": {"max_attempts": 1}}}},
        "settings.on_error",
        "unknown on_error",
    ),
    ({"id": "x", "settings": {"on_error": 5}}, "settings.on_error", "unknown on_error 5"),
    (
        {"id": "x", "settings": {"save_history": "some"}},
        "settings.save_history",
        "unknown save_history 'some'",
    ),
    (
        {"id": "x", "settings": {"max_execution_time_ms": float("inf")}},
        "settings.max_execution_time_ms",
        "finite",
    ),
]


@pytest.mark.parametrize(("doc", "path", "fragment"), BAD)
def test_bad_shapes_get_a_clear_error(doc: Any, path: str, fragment: str) -> None:
    with pytest.raises(FlowEngineFormatError) as info:
        workflow_from_flowengine(doc)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.path == path
    assert fragment in error.message
    assert str(error) == (f"{path}: {error.message}" if path else error.message)


def test_mangled_documents_never_raise_anything_else() -> None:
    rng = random.Random(99)
    junk: list[Any] = [None, True, 0, 1.5, -1, "", "x", [], {}, [1], {"type": "Bytes"}]
    parsed = 0
    for _ in range(1500):
        doc = random_document(rng)
        mangle(doc, rng, junk)
        try:
            wf = workflow_from_flowengine(doc)
        except FlowEngineFormatError:
            continue
        parsed += 1
        assert roundtrip(doc) == doc
        assert workflow_from_flowengine(workflow_to_flowengine(wf)) == wf
    assert parsed > 100


# --------------------------------------------------------------------------------------------
# Generators (hand-rolled: no extra dependency)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A config value, typed or plain, of any kind."""
    choice = rng.randrange(12 if depth < 2 else 8)
    scalars: list[Any] = [None, True, 7, -2.5, 3.0, "s", "{{ $input.value }}", ""]
    if choice < 4:
        return rng.choice(scalars)
    if choice == 4:
        return {"type": "Null"}
    if choice == 5:
        value = rng.choice([True, 1, 1.0, "t"])
        kind = {bool: "Bool", int: "Number", float: "Number", str: "String"}[type(value)]
        return {"type": kind, "value": value}
    if choice == 6:
        return {"type": "Bytes", "value": [rng.randrange(256) for _ in range(rng.randrange(4))]}
    if choice == 7:
        return {"type": "Json", "value": rng.choice([{"a": [1, None]}, [1, "x"], 5, None])}
    if choice == 8:
        return {"type": "Array", "value": [random_value(rng, depth + 1) for _ in range(2)]}
    if choice == 9:
        return {"type": "Object", "value": {"k": random_value(rng, depth + 1)}}
    if choice == 10:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(3))}


def maybe(rng: random.Random, doc: dict[str, Any], key: str, *values: Any) -> None:
    """Put ``key`` in ``doc`` with one of ``values``, or leave it out."""
    if rng.random() < 0.5:
        doc[key] = rng.choice(values)


def random_document(rng: random.Random) -> dict[str, Any]:
    ids = [rng.choice(["a", "b", "node-1", "id with spaces", "ü"]) + str(i) for i in range(4)]
    nodes = []
    for node_id in ids[: rng.randrange(5)]:
        node: dict[str, Any] = {"id": node_id, "node_type": rng.choice(["http.request", "x"])}
        maybe(rng, node, "name", None, "Name", "")
        if rng.random() < 0.8:
            node["config"] = {f"c{i}": random_value(rng) for i in range(rng.randrange(4))}
        maybe(rng, node, "position", {"x": 1, "y": 2.5}, {"x": 1.0, "y": 0}, {"y": 3}, None)
        maybe(
            rng,
            node,
            "retry_policy",
            {"max_attempts": 3, "delay_ms": 10, "backoff_multiplier": 2},
            {"max_attempts": 2.0, "delay_ms": 0, "backoff_multiplier": 1.5, "max_delay_ms": 9},
            {"max_attempts": 1, "jitter": 0.5, "extra": "kept"},
            None,
        )
        maybe(rng, node, "timeout_ms", 100, 100.0, None)
        maybe(rng, node, "on_error", "stop", "continue", "skip", None)
        maybe(rng, node, "needs_approval", True, False, None)
        maybe(rng, node, "filters", {"all": []}, None, [1])
        maybe(rng, node, "x-unknown", {"any": "thing"}, 0)
        nodes.append(node)
    connections = []
    for _ in range(rng.randrange(4)):
        connection: dict[str, Any] = {"from_node": rng.choice(ids), "to_node": rng.choice(ids)}
        maybe(rng, connection, "from_port", "out", "value", None)
        maybe(rng, connection, "to_port", "in", "value", None)
        maybe(rng, connection, "id", "c1", "c2", None)
        maybe(rng, connection, "x-unknown", 1)
        connections.append(connection)
    triggers = []
    for index in range(rng.randrange(3)):
        trigger_type = rng.choice(
            [
                {"type": "Manual"},
                {"type": "Cron", "expression": "* * * * *"},
                {"type": "Cron", "expression": "0 1 * * *", "timezone": "UTC"},
                {"type": "Webhook", "path": "/p"},
                {"type": "Event", "event_type": "e"},
            ]
        )
        trigger: dict[str, Any] = {
            "id": rng.choice(["t", f"t{index}"]),
            "trigger_type": trigger_type,
        }
        maybe(rng, trigger, "enabled", True, False, None)
        triggers.append(trigger)
    doc: dict[str, Any] = {"id": rng.choice(["wf", "", "550e8400"])}
    maybe(rng, doc, "name", "N", "", None)
    maybe(rng, doc, "description", "D", None)
    if nodes or rng.random() < 0.5:
        doc["nodes"] = nodes
    if connections or rng.random() < 0.5:
        doc["connections"] = connections
    if triggers or rng.random() < 0.5:
        doc["triggers"] = triggers
    settings: dict[str, Any] = {}
    maybe(rng, settings, "max_parallel_nodes", 1, 10, 4.0, None)
    maybe(
        rng,
        settings,
        "on_error",
        "StopWorkflow",
        "ContinueOnError",
        {"RetryWorkflow": {"max_attempts": 2}},
        {"RetryWorkflow": {"max_attempts": 1, "note": "kept"}},
        None,
    )
    maybe(rng, settings, "max_execution_time_ms", 1000, None)
    maybe(rng, settings, "save_history", "all", "failed", "none", None)
    maybe(rng, settings, "x-unknown", [1])
    maybe(rng, doc, "settings", settings, None)
    maybe(rng, doc, "x-top", {"kept": True})
    # Shuffle key order at the top: the output must follow the input's order.
    keys = list(doc)
    rng.shuffle(keys)
    return {key: doc[key] for key in keys}


def mangle(doc: Any, rng: random.Random, junk: list[Any]) -> None:
    """Replace one value somewhere inside ``doc`` with junk, or drop a key."""
    target = doc
    for _ in range(rng.randrange(1, 6)):
        if isinstance(target, dict) and target:
            key = rng.choice(list(target))
            if rng.random() < 0.3 or not isinstance(target[key], dict | list):
                if rng.random() < 0.2:
                    del target[key]
                else:
                    target[key] = copy.deepcopy(rng.choice(junk))
                return
            target = target[key]
        elif isinstance(target, list) and target:
            index = rng.randrange(len(target))
            if rng.random() < 0.3 or not isinstance(target[index], dict | list):
                target[index] = copy.deepcopy(rng.choice(junk))
                return
            target = target[index]
        else:
            return


def random_workflow(rng: random.Random) -> Workflow:
    """A canonical workflow with every field at a random value (no dialect extras)."""
    values: list[Any] = [None, True, 0, 1, 2.5, "x", b"\x00\x01", [1, "a"], {"a": {"b": None}}]
    nodes = tuple(
        Node(
            id=f"n{i}",
            type=rng.choice(["http.request", "debug.log"]),
            name=rng.choice([None, "Name"]),
            config={f"k{j}": rng.choice(values) for j in range(rng.randrange(3))},
            position=rng.choice([None, Position(1.0, 2.5)]),
            retry=rng.choice(
                [None, RetryPolicy(3, 10, 2.0, None, 0.0), RetryPolicy(2, 5, 1.5, 50, 0.2)]
            ),
            timeout_ms=rng.choice([None, 1000]),
            on_error=rng.choice(list(OnError)),
            needs_approval=rng.choice([True, False]),
            filters=rng.choice([None, {"any": [{"left": 1}]}]),
        )
        for i in range(rng.randrange(4))
    )
    edges = tuple(
        Edge(
            id=f"e{i}",
            source=rng.choice(["n0", "n1"]),
            target=rng.choice(["n1", "n2"]),
            source_port=rng.choice([DEFAULT_PORT, "out"]),
            target_port=rng.choice([DEFAULT_PORT, "in"]),
        )
        for i in range(rng.randrange(3))
    )
    triggers = tuple(
        rng.choice(
            [
                Trigger(f"t{i}"),
                Trigger(f"t{i}", TriggerKind.CRON, {"expression": "* * * * *"}, False),
                Trigger(f"t{i}", TriggerKind.WEBHOOK, {"path": "/x"}),
                Trigger(f"t{i}", TriggerKind.EVENT, {"event_type": "e"}),
            ]
        )
        for i in range(rng.randrange(3))
    )
    settings = WorkflowSettings(
        max_parallel_nodes=rng.choice([1, 10]),
        on_error=rng.choice(
            [
                WorkflowOnError(),
                WorkflowOnError(WorkflowOnErrorKind.CONTINUE),
                WorkflowOnError(WorkflowOnErrorKind.RETRY, 3),
            ]
        ),
        max_execution_time_ms=rng.choice([None, 5000]),
        save_history=rng.choice(list(SaveHistory)),
    )
    return Workflow(
        id=rng.choice(["w", "550e8400"]),
        name=rng.choice(["", "Name"]),
        description=rng.choice(["", "About"]),
        nodes=nodes,
        edges=edges,
        triggers=triggers,
        settings=settings,
    )
