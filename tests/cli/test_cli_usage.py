"""Bad usage exits 2 with the reason on stderr; ``--version`` and help."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from .workflows import node, workflow, write

Cli = Callable[..., Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"runnel {version('runnel')}"


def test_no_arguments_shows_the_commands(cli: Cli) -> None:
    result = cli()
    assert result.exit_code == 2
    for command in ("run", "validate", "nodes"):
        assert command in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_missing_file_is_bad_usage(cli: Cli, tmp_path: Path, command: str) -> None:
    result = cli(command, str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "nope.json: no such file" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON: Expecting property name"),
        ("[1, 2]", "a workflow must be a JSON object"),
        ('{"name": "no id"}', "not a Flow Engine workflow: id"),
        (
            '{"id": "x", "nodes": [{"id": "a", "node_type": "debug.log",'
            ' "config": {"level": {"type": "Number", "value": "loud"}}}]}',
            "not a Flow Engine workflow",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_file_that_is_not_a_workflow_is_bad_usage(
    cli: Cli, tmp_path: Path, command: str, text: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    result = cli(command, str(path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "novalue"], "--input expects key=value, got 'novalue'"),
        (["--inputs-json", "{oops"], "--inputs-json is not valid JSON"),
        (["--inputs-json", "[1]"], "--inputs-json must be a JSON object"),
        (["--approve", "approve", "--reject", "approve"], "both approved and rejected: approve"),
        (["--approve", "nobody"], "no approval node of the workflow: 'nobody'"),
        (["--reject", "order"], "no approval node of the workflow: 'order'"),
    ],
)
def test_bad_run_options_are_bad_usage(cli: Cli, args: list[str], message: str) -> None:
    result = cli("run", str(EXAMPLES / "approval.json"), "--json", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_the_approval_nodes_are_listed_when_a_decision_names_another(cli: Cli) -> None:
    result = cli("run", str(EXAMPLES / "approval.json"), "--approve", "ship")
    assert result.exit_code == 2
    assert "approval nodes: approve" in result.stderr


def test_needs_approval_nodes_can_be_decided(cli: Cli, tmp_path: Path) -> None:
    gated = node("gated", "data.static", data=1) | {"needs_approval": True}
    path = write(tmp_path, workflow([gated]))
    waiting = cli("run", str(path), "--json")
    assert waiting.exit_code == 3
    assert waiting.json()["waiting"] == ["gated"]
    approved = cli("run", str(path), "--json", "--approve", "gated")
    assert approved.exit_code == 0, approved.stderr
    assert approved.json()["outputs"] == {"gated": {"data": 1}}


def test_an_unknown_option_is_bad_usage(cli: Cli) -> None:
    result = cli("run", str(EXAMPLES / "branching.json"), "--bogus")
    assert result.exit_code == 2
    assert "--bogus" in result.stderr


def test_an_unknown_command_is_bad_usage(cli: Cli) -> None:
    result = cli("frobnicate")
    assert result.exit_code == 2
