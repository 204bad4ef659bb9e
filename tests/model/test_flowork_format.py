"""The Flowork ``workflow_data`` <-> canonical workflow conversion (runnel.model.flowork)."""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from runnel.model.flowork import (
    EXTRA_KEY,
    MAX_DEPTH,
    DelayType,
    FloworkFormatError,
    LoopConfig,
    ModulePorts,
    loop_config,
    parse_loop_config,
    workflow_from_flowork,
    workflow_to_flowork,
)
from runnel.model.workflow import DEFAULT_PORT, Edge, Node, OnError, Position, Workflow
from runnel.store.codec import dumps, loads, workflow_from_dict, workflow_to_dict

#: The ports of the modules the tests use, as runnel.services.components.flowork_ports gives.
PORTS: Mapping[str, ModulePorts] = {
    "static_data_provider_module": ModulePorts((), ("data",)),
    "debug_popup_module": ModulePorts(("value",), ("value",)),
    "json_parse": ModulePorts(("json",), ("parsed",)),
    "if": ModulePorts(("value",), ("true", "false")),
    "has_output": ModulePorts(("input", "other"), ("output", "more")),
}


def lookup(module_id: str, config: Mapping[str, Any]) -> ModulePorts | None:
    return PORTS.get(module_id)


def seed_doc() -> dict[str, Any]:
    """The example of PROTOCOLS.md, two nodes long."""
    return {
        "nodes": [
            {
                "id": "a",
                "name": "Data",
                "x": 0,
                "y": 10.5,
                "module_id": "static_data_provider_module",
                "config_values": {"data": {"greeting": "{{vars.GREETING}}"}},
                "data": {"color": "#888"},
            },
            {
                "id": "b",
                "name": "Label",
                "x": 200,
                "y": 0,
                "module_id": "debug_popup_module",
                "config_values": {},
                "data": {"color": "#888"},
            },
        ],
        "connections": [
            {
                "id": "c1",
                "source": "a",
                "target": "b",
                "source_port_name": "output",
                "target_port_name": None,
                "type": "data",
                "animated": True,
            }
        ],
        "global_loop_config": {
            "isEnabled": False,
            "iterations": 1,
            "isDelayEnabled": False,
            "delayType": "static",
            "delayStatic": 1,
            "delayRandomMin": 1,
            "delayRandomMax": 5,
        },
    }


def rich_doc() -> dict[str, Any]:
    """Every feature: error and tool connections, unknown keys, nulls, odd port names."""
    doc = seed_doc()
    doc["nodes"].extend(
        [
            {
                "id": "parse",
                "name": "Parse",
                "x": 400,
                "y": 0,
                "module_id": "json_parse",
                "config_values": {"json": "{{vars.RAW}}"},
                "data": None,
                "gui_only": [1, 2, {"k": None}],
            },
            {"id": "tool", "module_id": "some_tool", "data": {"icon": "t.svg"}},
            {"id": "ok", "name": "", "x": 1.25, "y": -3, "module_id": "debug_popup_module"},
            {"id": "bad", "name": None, "module_id": "debug_popup_module", "config_values": None},
        ]
    )
    doc["connections"].extend(
        [
            {
                "id": "c2",
                "source": "b",
                "target": "parse",
                "source_port_name": None,
                "target_port_name": "input",
                "type": "data",
                "animated": False,
            },
            {
                "id": "t1",
                "source": "tool",
                "target": "parse",
                "source_port_name": "tool_output",
                "target_port_name": "tools",
                "type": "tool",
            },
            {"id": "c3", "source": "parse", "target": "ok", "source_port_name": "output"},
            {
                "id": "c4",
                "source": "parse",
                "target": "bad",
                "source_port_name": "error",
                "target_port_name": "",
                "extra_key": {"keep": True},
            },
        ]
    )
    doc["global_loop_config"] = {
        "isEnabled": True,
        "iterations": 3,
        "isDelayEnabled": True,
        "delayType": "random",
        "delayStatic": 1,
        "delayRandomMin": 2,
        "delayRandomMax": 4.5,
        "gui": "kept",
    }
    doc["viewport"] = {"zoom": 1.5}
    return doc


def convert(doc: object, ports: Callable[..., ModulePorts | None] | None = lookup) -> Workflow:
    return workflow_from_flowork(
        doc, workflow_id="wf-1", name="My flow", owner="0xabc", ports=ports
    )


# -- conversion --------------------------------------------------------------------------


def test_seed_document_becomes_the_canonical_workflow() -> None:
    workflow = convert(seed_doc())
    assert (workflow.id, workflow.name, workflow.owner) == ("wf-1", "My flow", "0xabc")
    a, b = workflow.nodes
    assert a == Node(
        id="a",
        type="static_data_provider_module",
        name="Data",
        config={"data": {"greeting": "{{vars.GREETING}}"}},
        position=Position(0.0, 10.5),
        extra=a.extra,
    )
    assert (b.type, b.name, b.position, b.on_error) == (
        "debug_popup_module",
        "Label",
        Position(200.0, 0.0),
        OnError.STOP,
    )
    (edge,) = workflow.edges
    # "output" is the module's default output: the node type's first port; a null target
    # port is the target's first input.
    assert (edge.id, edge.source, edge.source_port, edge.target, edge.target_port) == (
        "c1",
        "a",
        "data",
        "b",
        "value",
    )
    assert loop_config(workflow) == LoopConfig()


def test_ports_are_mapped_by_the_module_ports() -> None:
    workflow = convert(rich_doc())
    ports = {edge.id: (edge.source_port, edge.target_port) for edge in workflow.edges}
    assert ports == {
        "c1": ("data", "value"),
        "c2": ("value", "json"),  # null source: the first output; "input": the first input
        "c3": ("parsed", "value"),
        "c4": ("error", "value"),  # an empty target port is the first input too
    }


def test_named_ports_stay_and_output_stays_where_the_type_has_it() -> None:
    doc = {
        "nodes": [
            {"id": "a", "module_id": "has_output"},
            {"id": "b", "module_id": "has_output"},
            {"id": "c", "module_id": "unknown_module"},
        ],
        "connections": [
            {"id": "1", "source": "a", "target": "b", "source_port_name": "output"},
            {
                "id": "2",
                "source": "a",
                "target": "b",
                "source_port_name": "more",
                "target_port_name": "input",
            },
            {"id": "3", "source": "a", "target": "c", "target_port_name": "other"},
            {"id": "4", "source": "c", "target": "b", "target_port_name": "other"},
        ],
    }
    edges = {e.id: (e.source_port, e.target_port) for e in convert(doc).edges}
    assert edges == {
        "1": ("output", "input"),
        "2": ("more", "input"),
        "3": ("output", "other"),
        "4": ("output", "other"),  # unknown module: Flowork's names
    }


def test_without_a_port_lookup_names_stay_and_nulls_get_flowork_defaults() -> None:
    workflow = convert(seed_doc(), ports=None)
    assert [(e.source_port, e.target_port) for e in workflow.edges] == [("output", DEFAULT_PORT)]
    assert workflow_to_flowork(workflow) == seed_doc()


def test_error_connection_makes_its_source_continue_on_error() -> None:
    workflow = convert(rich_doc())
    assert workflow.node("parse").on_error is OnError.CONTINUE
    assert {n.id for n in workflow.nodes if n.on_error is OnError.CONTINUE} == {"parse"}


def test_tool_connections_are_no_edges() -> None:
    workflow = convert(rich_doc())
    assert "t1" not in {edge.id for edge in workflow.edges}
    # The tool feeds nothing at run time: it stays a start node with no edge out.
    assert not [e for e in workflow.edges if "tool" in (e.source, e.target)]
    saved = workflow.extra[EXTRA_KEY]["tool_connections"]
    assert [(item["index"], item["connection"]["id"]) for item in saved] == [(2, "t1")]


def test_variables_stay_as_expressions() -> None:
    workflow = convert(rich_doc())
    assert workflow.node("a").config == {"data": {"greeting": "{{vars.GREETING}}"}}
    assert workflow.node("parse").config == {"json": "{{vars.RAW}}"}


def test_nulls_and_absences_become_defaults() -> None:
    workflow = convert(rich_doc())
    tool = workflow.node("tool")
    assert (tool.name, tool.config, tool.position) == (None, {}, None)
    assert workflow.node("bad").config == {}
    assert workflow.node("ok").name == ""
    assert workflow.node("ok").label == "ok"
    empty = convert({})
    assert (empty.nodes, empty.edges) == ((), ())
    assert workflow_to_flowork(empty) == {}
    nulls = {"nodes": None, "connections": None}
    assert workflow_to_flowork(convert(nulls)) == nulls


def test_the_input_is_copied() -> None:
    doc = seed_doc()
    workflow = convert(doc)
    doc["nodes"][0]["config_values"]["data"]["greeting"] = "changed"
    assert workflow.node("a").config["data"] == {"greeting": "{{vars.GREETING}}"}
    out = workflow_to_flowork(workflow)
    out["nodes"][0]["data"]["color"] = "red"
    assert workflow_to_flowork(workflow)["nodes"][0]["data"] == {"color": "#888"}


# -- round trip --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [seed_doc, rich_doc])
@pytest.mark.parametrize("with_ports", [True, False])
def test_round_trip_is_lossless(make: Callable[[], dict[str, Any]], with_ports: bool) -> None:
    doc = make()
    workflow = convert(copy.deepcopy(doc), ports=lookup if with_ports else None)
    assert workflow_to_flowork(workflow) == doc
    # Twice over, and through JSON, too.
    again = convert(json.loads(json.dumps(workflow_to_flowork(workflow))))
    assert workflow_to_flowork(again) == doc


def test_a_stored_workflow_goes_back_unchanged() -> None:
    workflow = convert(rich_doc())
    stored = workflow_from_dict(loads(dumps(workflow_to_dict(workflow))))
    assert workflow_to_flowork(stored) == rich_doc()
    assert loop_config(stored) == loop_config(workflow)
    assert stored.node("parse").on_error is OnError.CONTINUE


def test_changes_are_written_and_the_rest_kept() -> None:
    workflow = convert(rich_doc())
    nodes = [
        replace(node, config={"data": 2}, name="New", position=Position(5, 6))
        if node.id == "a"
        else replace(node, position=None)
        if node.id == "b"
        else node
        for node in workflow.nodes
    ]
    edges = [
        replace(edge, source_port="other", target_port="x") if edge.id == "c1" else edge
        for edge in workflow.edges
    ]
    out = workflow_to_flowork(replace(workflow, nodes=tuple(nodes), edges=tuple(edges)))
    a, b = out["nodes"][0], out["nodes"][1]
    assert a == {
        "id": "a",
        "name": "New",
        "x": 5.0,
        "y": 6.0,
        "module_id": "static_data_provider_module",
        "config_values": {"data": 2},
        "data": {"color": "#888"},
    }
    assert "x" not in b and "y" not in b
    c1 = out["connections"][0]
    assert (c1["source_port_name"], c1["target_port_name"], c1["animated"]) == ("other", "x", True)
    assert out["connections"][2]["id"] == "t1"  # the tool connection keeps its place


def test_a_canonical_workflow_becomes_flowork_data() -> None:
    workflow = Workflow(
        id="w",
        nodes=(
            Node("s", "data.static", config={"data": 1}, position=Position(1.0, 2.0)),
            Node("p", "debug.popup", name="Show"),
        ),
        edges=(Edge("e", "s", "p", "data", "value"),),
    )
    out = workflow_to_flowork(workflow)
    assert out == {
        "nodes": [
            {
                "id": "s",
                "name": None,
                "module_id": "data.static",
                "config_values": {"data": 1},
                "x": 1.0,
                "y": 2.0,
            },
            {"id": "p", "name": "Show", "module_id": "debug.popup", "config_values": {}},
        ],
        "connections": [
            {
                "id": "e",
                "source": "s",
                "target": "p",
                "source_port_name": "data",
                "target_port_name": "value",
                "type": "data",
            }
        ],
    }
    back = workflow_from_flowork(out, workflow_id="w", name="")
    assert [(n.id, n.type, n.config, n.position) for n in back.nodes] == [
        (n.id, n.type, n.config, n.position) for n in workflow.nodes
    ]
    assert [(e.source_port, e.target_port) for e in back.edges] == [("data", "value")]


# -- global_loop_config ------------------------------------------------------------------


def test_loop_config_reads_the_settings() -> None:
    config = loop_config(convert(rich_doc()))
    assert config == LoopConfig(
        enabled=True,
        iterations=3,
        delay_enabled=True,
        delay_type=DelayType.RANDOM,
        delay_static=1.0,
        delay_random_min=2.0,
        delay_random_max=4.5,
    )
    assert config.runs == 3
    assert config.delay_seconds(lambda: 0.0) == 2.0
    assert config.delay_seconds(lambda: 0.5) == 3.25
    assert 2.0 <= config.delay_seconds() <= 4.5
    assert loop_config(Workflow(id="x")) == LoopConfig()


def test_loop_config_delays() -> None:
    static = LoopConfig(enabled=True, iterations=2, delay_enabled=True, delay_static=7)
    assert static.delay_seconds() == 7
    assert replace(static, delay_enabled=False).delay_seconds() == 0.0
    off = replace(static, enabled=False)
    assert (off.runs, off.delay_seconds()) == (1, 0.0)


def test_loop_config_accepts_numbers_as_text_and_defaults() -> None:
    config = parse_loop_config({"isEnabled": True, "iterations": "4", "delayStatic": " 2.5 "})
    assert (config.runs, config.delay_static, config.delay_type) == (4, 2.5, DelayType.STATIC)
    assert parse_loop_config(None) == LoopConfig()
    assert parse_loop_config({"iterations": 2.0}).iterations == 2


@pytest.mark.parametrize(
    ("loop", "path"),
    [
        ([], "global_loop_config"),
        ({"isEnabled": "yes"}, "global_loop_config.isEnabled"),
        ({"isDelayEnabled": 1}, "global_loop_config.isDelayEnabled"),
        ({"iterations": 0}, "global_loop_config.iterations"),
        ({"iterations": 2.5}, "global_loop_config.iterations"),
        ({"iterations": True}, "global_loop_config.iterations"),
        ({"iterations": "many"}, "global_loop_config.iterations"),
        ({"iterations": 10**9}, "global_loop_config.iterations"),
        ({"iterations": 10**400}, "global_loop_config.iterations"),
        ({"delayType": "sometimes"}, "global_loop_config.delayType"),
        ({"delayType": 1}, "global_loop_config.delayType"),
        ({"delayStatic": -1}, "global_loop_config.delayStatic"),
        ({"delayStatic": "inf"}, "global_loop_config.delayStatic"),
        ({"delayStatic": 10**6}, "global_loop_config.delayStatic"),
        ({"delayRandomMin": {}}, "global_loop_config.delayRandomMin"),
        (
            {"delayType": "random", "delayRandomMin": 5, "delayRandomMax": 1},
            "global_loop_config.delayRandomMin",
        ),
    ],
)
def test_bad_loop_config_is_refused(loop: Any, path: str) -> None:
    doc = seed_doc()
    doc["global_loop_config"] = loop
    with pytest.raises(FloworkFormatError) as info:
        convert(doc)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")


# -- malformed input ---------------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("nodes not a list", _set(("nodes",), {"a": 1}), "nodes"),
    ("connections a string", _set(("connections",), "c1"), "connections"),
    ("node not an object", _set(("nodes", 0), "a"), "nodes[0]"),
    ("node without id", _delete(("nodes", 0, "id")), "nodes[0].id"),
    ("empty node id", _set(("nodes", 1, "id"), " "), "nodes[1].id"),
    ("numeric node id", _set(("nodes", 1, "id"), 7), "nodes[1].id"),
    ("duplicate node id", _set(("nodes", 1, "id"), "a"), "nodes[1].id"),
    ("no module id", _delete(("nodes", 0, "module_id")), "nodes[0].module_id"),
    ("module id list", _set(("nodes", 0, "module_id"), ["x"]), "nodes[0].module_id"),
    ("name a number", _set(("nodes", 0, "name"), 1), "nodes[0].name"),
    ("x a string", _set(("nodes", 0, "x"), "0"), "nodes[0].x"),
    ("y a boolean", _set(("nodes", 0, "y"), True), "nodes[0].y"),
    ("x without y", _delete(("nodes", 0, "y")), "nodes[0].y"),
    ("x infinite", _set(("nodes", 0, "x"), math.inf), "nodes[0].x"),
    ("x too large", _set(("nodes", 0, "x"), 10**400), "nodes[0].x"),
    ("config a list", _set(("nodes", 0, "config_values"), []), "nodes[0].config_values"),
    (
        "config NaN",
        _set(("nodes", 0, "config_values", "n"), math.nan),
        "nodes[0].config_values.n",
    ),
    (
        "config not JSON",
        _set(("nodes", 0, "config_values", "data"), {1, 2}),
        "nodes[0].config_values.data",
    ),
    ("config key not text", _set(("nodes", 0, "config_values"), {1: 2}), "nodes[0].config_values"),
    ("data a tuple", _set(("nodes", 0, "data"), (1,)), "nodes[0].data"),
    ("connection a list", _set(("connections", 0), []), "connections[0]"),
    ("connection without id", _delete(("connections", 0, "id")), "connections[0].id"),
    ("connection to nowhere", _set(("connections", 0, "target"), "zz"), "connections[0].target"),
    ("connection source null", _set(("connections", 0, "source"), None), "connections[0].source"),
    (
        "source port a number",
        _set(("connections", 0, "source_port_name"), 1),
        "connections[0].source_port_name",
    ),
    (
        "target port an object",
        _set(("connections", 0, "target_port_name"), {}),
        "connections[0].target_port_name",
    ),
    ("type a boolean", _set(("connections", 0, "type"), False), "connections[0].type"),
    ("animated a string", _set(("connections", 0, "animated"), "yes"), "connections[0].animated"),
    ("loop config a string", _set(("global_loop_config",), "on"), "global_loop_config"),
    ("unknown key not JSON", _set(("gui",), object()), "gui"),
]


@pytest.mark.parametrize(("case", "mutate", "path"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_names_the_path(
    case: str, mutate: Callable[[dict[str, Any]], None], path: str
) -> None:
    doc = seed_doc()
    mutate(doc)
    with pytest.raises(FloworkFormatError) as info:
        convert(doc)
    assert info.value.path == path, case
    assert info.value.message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("data", [None, [], "{}", 1, b"{}", {1: "a"}])
def test_a_document_must_be_a_json_object(data: object) -> None:
    with pytest.raises(FloworkFormatError):
        convert(data)


def test_duplicate_connection_ids_are_refused_tools_included() -> None:
    doc = rich_doc()
    doc["connections"][2]["id"] = "c1"
    with pytest.raises(FloworkFormatError) as info:
        convert(doc)
    assert info.value.path == "connections[2].id"


def test_a_tool_connection_must_join_nodes() -> None:
    doc = rich_doc()
    doc["connections"][2]["source"] = "ghost"
    with pytest.raises(FloworkFormatError) as info:
        convert(doc)
    assert info.value.path == "connections[2].source"


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    doc = seed_doc()
    doc["nodes"][0]["config_values"]["data"] = deep
    with pytest.raises(FloworkFormatError) as info:
        convert(doc)
    assert info.value.path.startswith("nodes[0].config_values.data")
    very_deep: Any = {}
    for _ in range(5000):
        very_deep = {"k": very_deep}
    with pytest.raises(FloworkFormatError):
        convert({"nodes": [very_deep]})


# -- fuzz --------------------------------------------------------------------------------

JUNK: tuple[Any, ...] = (
    None,
    0,
    -1,
    2.5,
    math.nan,
    math.inf,
    True,
    "",
    " ",
    "output",
    "error",
    "tool",
    "a",
    "b",
    [],
    [None],
    {},
    {"id": "a"},
    {1: 2},
    (1, 2),
    {1, 2},
    b"x",
    object(),
    10**30,
    10**400,
    -(10**400),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


def _mangle(doc: dict[str, Any], rng: random.Random) -> Any:
    for _ in range(rng.randint(1, 3)):
        paths = _paths(doc)
        path = rng.choice(paths)
        if not path:
            return rng.choice(JUNK) if rng.random() < 0.3 else doc
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.5:
            parent[path[-1]] = copy.copy(rng.choice(JUNK))
        elif action < 0.7 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.85 and isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(parent)) if parent else None)
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "x", "id", "source", "module_id"])] = rng.choice(JUNK)
        else:
            parent[path[-1]] = copy.deepcopy(doc.get("nodes"))  # a copy of a part, nested
    return doc


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def test_fuzzed_documents_convert_or_raise_a_format_error() -> None:
    rng = random.Random(7)
    converted = 0
    refused: list[FloworkFormatError] = []
    for round_ in range(500):
        doc = _mangle(rich_doc() if round_ % 2 else seed_doc(), rng)
        before = copy.deepcopy(doc) if _is_json(doc) else None
        try:
            workflow = convert(doc, ports=lookup if round_ % 3 else None)
        except FloworkFormatError as error:
            refused.append(error)
            continue
        converted += 1
        # Whatever converts is plain JSON, and it goes back exactly as it came.
        assert before is not None
        assert workflow_to_flowork(workflow) == before
        for node in workflow.nodes:
            assert isinstance(node.id, str) and node.id
            assert isinstance(node.type, str) and node.type
        node_ids = {node.id for node in workflow.nodes}
        for edge in workflow.edges:
            assert {edge.source, edge.target} <= node_ids
            assert isinstance(edge.source_port, str) and isinstance(edge.target_port, str)
        loop_config(workflow)
    assert converted > 50
    assert len(refused) > 200
    assert all(isinstance(error.path, str) and error.message for error in refused)
