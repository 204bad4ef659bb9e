"""``runnel run``: inputs, the JSON result, the live view, failures and simulate mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .workflows import connection, node, workflow, write

Cli = Callable[..., Any]

RESULT_KEYS = {
    "execution_id",
    "workflow_id",
    "status",
    "completed_nodes",
    "total_nodes",
    "duration_ms",
    "outputs",
    "nodes",
    "waiting",
    "error",
}


def chain(tmp_path: Path) -> Path:
    """debug.log -> transform.set: the start node takes the ``message`` input."""
    return write(
        tmp_path,
        workflow(
            [
                node("log", "debug.log"),
                node(
                    "wrap", "transform.set", keep_input=False, values={"got": "{{ $input.value }}"}
                ),
            ],
            [connection("log", "message", "wrap", "value")],
        ),
    )


def failing(tmp_path: Path, **parse_fields: Any) -> Path:
    """A json_parse of text that is not JSON, followed by a log of its result."""
    return write(
        tmp_path,
        workflow(
            [
                node("parse", "transform.json_parse", json="not json") | parse_fields,
                node("after", "debug.log"),
            ],
            [connection("parse", "parsed", "after", "message")],
        ),
    )


def test_inputs_reach_the_start_node_by_port_name(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(chain(tmp_path)), "--json", "--input", 'message={"n": [1, 2]}')
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert set(document) == RESULT_KEYS
    assert document["status"] == "succeeded"
    assert (document["completed_nodes"], document["total_nodes"]) == (2, 2)
    assert document["outputs"] == {"wrap": {"value": {"got": {"n": [1, 2]}}}}
    log = document["nodes"]["log"]
    assert log["status"] == "succeeded"
    assert log["error"] is None
    assert log["attempts"] == 1
    assert isinstance(log["duration_ms"], float)
    assert document["workflow_id"] == "test"
    assert document["waiting"] == []
    assert document["error"] is None


def test_inputs_json_takes_typed_values_and_input_pairs_override(cli: Cli, tmp_path: Path) -> None:
    typed = json.dumps({"message": {"type": "Bytes", "value": [104, 105]}})
    from_json = cli("run", str(chain(tmp_path)), "--json", "--inputs-json", typed)
    assert from_json.exit_code == 0, from_json.stderr
    # Bytes are plain JSON in the result: base64 text.
    assert from_json.json()["outputs"] == {"wrap": {"value": {"got": "aGk="}}}
    both = cli(
        "run", str(chain(tmp_path)), "--json", "--inputs-json", typed, "--input", "message=text"
    )
    assert both.json()["outputs"] == {"wrap": {"value": {"got": "text"}}}


def test_the_live_view_prints_events_then_the_node_table(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(chain(tmp_path)), "--input", "message=hello", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("▶ execution ")
    started = lines.index("  ▸ log (debug.log) started")
    logged = lines.index("  · log [log info] hello")
    finished = next(i for i, line in enumerate(lines) if line.startswith("  ✓ log succeeded in "))
    table = next(i for i, line in enumerate(lines) if line.strip() == "test: succeeded")
    assert started < logged < finished < table
    rows = {line.split()[0]: line.split()[1:3] for line in lines[table + 1 :] if line.strip()}
    assert rows["log"] == ["debug.log", "succeeded"]
    assert rows["wrap"] == ["transform.set", "succeeded"]
    assert lines[-1].endswith("succeeded: 2/2 nodes completed")
    assert result.stderr == ""


def test_a_failed_node_fails_the_run_with_exit_1(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(failing(tmp_path)), "--json")
    assert result.exit_code == 1
    document = result.json()
    assert document["status"] == "failed"
    parse = document["nodes"]["parse"]
    assert parse["status"] == "failed"
    assert parse["error"].startswith("invalid JSON at line 1, column 1")
    assert document["error"] == parse["error"]
    assert document["nodes"]["after"]["status"] != "succeeded"
    assert document["completed_nodes"] == 0


def test_a_failed_run_shows_the_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", str(failing(tmp_path)), env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "✗ parse failed on attempt 1: invalid JSON" in result.stdout
    assert "■ execution failed" in result.stdout
    assert "error: invalid JSON at line 1" in result.stdout


def test_on_error_continue_sends_the_failure_down_the_error_port(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        workflow(
            [
                node("parse", "transform.json_parse", json="not json")
                | {"on_error": "continue", "retry_policy": {"max_attempts": 2, "delay_ms": 1}},
                node(
                    "report",
                    "debug.log",
                    message="caught: {{ $input.message.error }} ({{ $input.message.failed_node_id"
                    " }})",
                ),
            ],
            [connection("parse", "error", "report", "message")],
        ),
    )
    result = cli("run", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    document = result.json()
    assert document["status"] == "succeeded"
    assert document["nodes"]["parse"]["status"] == "failed"
    assert document["nodes"]["parse"]["attempts"] == 2
    message = document["outputs"]["report"]["message"]
    assert message.startswith("caught: invalid JSON")
    assert message.endswith("(parse)")


def test_a_timeout_fails_the_node(cli: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path, workflow([node("slow", "time.delay", delay_ms=5_000) | {"timeout_ms": 20}])
    )
    result = cli("run", str(path), "--json")
    assert result.exit_code == 1
    assert "timed out after 20 ms" in result.json()["nodes"]["slow"]["error"]


def test_simulate_returns_pinned_outputs_of_side_effect_nodes(cli: Cli, tmp_path: Path) -> None:
    pinned = {"status": 201, "body": "pinned"}
    path = write(
        tmp_path,
        workflow(
            [
                node("post", "http.request", method="POST", pinned_output=pinned),
                node("log", "debug.log"),
            ],
            [connection("post", "body", "log", "message")],
        ),
    )
    document = cli(
        "run", str(path), "--simulate", "--json", "--input", "url=https://example.com/hook"
    ).json()
    assert document["status"] == "succeeded"
    assert document["nodes"]["post"]["outputs"] == pinned
    assert document["outputs"] == {"log": {"message": "pinned"}}
    # Without --simulate the same workflow would really send; here it is refused offline.
    live = cli("run", str(path), "--json", "--input", "url=http://127.0.0.1:9/hook", env={})
    assert live.exit_code == 1
    assert "RUNNEL_HTTP_ALLOWED_HOSTS" in live.json()["nodes"]["post"]["error"]
