"""``runnel validate`` (and ``run``) list every problem of a broken workflow, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .workflows import connection, node, workflow, write

Cli = Callable[..., Any]


def test_a_valid_workflow(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        workflow(
            [node("a", "data.static", data=1), node("b", "debug.log")],
            [connection("a", "data", "b", "message")],
        ),
    )
    result = cli("validate", str(path))
    assert result.exit_code == 0
    assert result.stdout.strip() == f"valid: {path} (2 nodes, 1 edges)"
    assert result.stderr == ""
    as_json = cli("validate", str(path), "--json")
    assert as_json.exit_code == 0
    assert as_json.json() == {"valid": True, "problems": []}


@pytest.mark.parametrize(
    ("document", "lines"),
    [
        pytest.param(
            workflow([node("fetch", "http.requst")]),
            ["node 'fetch' type: unknown node type 'http.requst'; did you mean 'http.request'?"],
            id="unknown-type-with-suggestion",
        ),
        pytest.param(
            workflow(
                [node("a", "debug.log"), node("b", "debug.log"), node("c", "debug.log")],
                [
                    connection("a", "message", "b", "message"),
                    connection("b", "message", "c", "message"),
                    connection("c", "message", "a", "message"),
                ],
            ),
            ["the graph has a cycle: 'a' -> 'b' -> 'c' -> 'a'"],
            id="cycle",
        ),
        pytest.param(
            workflow(
                [node("a", "debug.log"), node("b", "debug.log")],
                [connection("a", "message", "ghost", "message")],
            ),
            ["edge 'a.message->ghost.message' target: edge target 'ghost' is not a node"],
            id="edge-to-unknown-node",
        ),
        pytest.param(
            workflow(
                [node("a", "debug.log"), node("b", "debug.log")],
                [connection("a", "nope", "b", "message")],
            ),
            ["edge 'a.nope->b.message' source_port: no output port 'nope' on debug.log node 'a'"],
            id="edge-from-unknown-port",
        ),
        pytest.param(
            workflow([node("wait", "time.delay", delay_ms=-5, colour="red")]),
            [
                "node 'wait' config.colour: unknown config key 'colour'",
                "node 'wait' config.delay_ms: ",
            ],
            id="bad-config",
        ),
        pytest.param(
            workflow([node("wait", "time.delay")]),
            ["node 'wait' config.delay_ms: config 'delay_ms' is required"],
            id="missing-config",
        ),
        pytest.param(
            workflow([node("s", "transform.set", values={"x": "{{ $input.value + }}"})]),
            ["node 's' config.values.x: syntax error"],
            id="expression-syntax",
        ),
        pytest.param(
            workflow([node("a", "debug.log"), node("a", "data.static")]),
            ["node 'a'", "duplicate_node_id"],
            id="duplicate-node-id",
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_each_problem_names_its_node_or_edge(
    cli: Cli, tmp_path: Path, command: str, document: dict[str, Any], lines: list[str]
) -> None:
    result = cli(command, str(write(tmp_path, document)))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "invalid workflow" in result.stderr
    for line in lines:
        assert line in result.stderr


def broken() -> dict[str, Any]:
    """One workflow with five different problems."""
    return workflow(
        [
            node("fetch", "http.requst"),
            node("log", "debug.log", level="loud"),
            node("a", "debug.log"),
            node("b", "debug.log"),
        ],
        [
            connection("log", "message", "ghost", "message"),
            connection("a", "message", "b", "message"),
            connection("b", "message", "a", "message"),
            connection("log", "message", "a", "nope"),
        ],
    )


def test_every_problem_is_reported_at_once(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", str(write(tmp_path, broken())))
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 5, result.stderr
    assert "invalid workflow (5 problems)" in result.stderr
    codes = [line.rsplit("[", 1)[1].rstrip("]") for line in problems]
    assert sorted(codes) == sorted(
        ["unknown_node_type", "config_enum", "unknown_node", "unknown_port", "cycle"]
    )


def test_validate_json_lists_the_problems(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", str(write(tmp_path, broken())), "--json")
    assert result.exit_code == 2
    document = result.json()
    assert document["valid"] is False
    assert len(document["problems"]) == 5
    unknown = next(p for p in document["problems"] if p["code"] == "unknown_node_type")
    assert unknown == {
        "code": "unknown_node_type",
        "message": "unknown node type 'http.requst'; did you mean 'http.request'?",
        "node_id": "fetch",
        "edge_id": None,
        "path": "type",
    }
    edge = next(p for p in document["problems"] if p["code"] == "unknown_node")
    assert edge["edge_id"] == "log.message->ghost.message"
    assert "invalid workflow (5 problems)" in result.stderr


def test_run_does_not_start_an_invalid_workflow(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(write(tmp_path, broken())), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "invalid workflow (5 problems)" in result.stderr
