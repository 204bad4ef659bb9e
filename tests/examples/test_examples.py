"""Every workflow in ``examples/`` runs through the real ``runnel`` command, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .zen_http import ZEN, ZenServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Arguments that make each example run to its end, offline (inputs, decisions; the seed's
#: github_zen example would reach the network, so it runs in simulate mode here and for real
#: against a local server below).
RUN_ARGS: dict[str, list[str]] = {
    "approval.json": ["--approve", "approve"],
    "branching.json": ["--input", "amount=250"],
    "fan_out_merge.json": [],
    "github_zen.json": ["--simulate", "--input", "url=https://api.github.com/zen"],
    "retry_demo.json": [],
    "subworkflow.json": [],
    "switch.json": ["--input", "kind=sms"],
    "transform_chain.json": [],
}

Cli = Callable[..., Any]


def example(name: str) -> str:
    return str(EXAMPLES / name)


def run_json(cli: Cli, name: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """``runnel run examples/NAME --json ARGS``: the result document (exit code checked)."""
    result = cli("run", example(name), "--json", *args, env=env)
    document = result.json()
    expected = {"succeeded": 0, "failed": 1, "waiting": 3}[document["status"]]
    assert result.exit_code == expected, result.stderr
    return document


def test_every_example_has_a_test_and_there_are_at_least_seven() -> None:
    names = sorted(path.name for path in EXAMPLES.glob("*.json"))
    assert names == sorted(RUN_ARGS)
    assert len(names) >= 7


@pytest.mark.parametrize("name", sorted(RUN_ARGS))
def test_every_example_validates(cli: Cli, name: str) -> None:
    result = cli("validate", example(name))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("valid")


@pytest.mark.parametrize("name", sorted(RUN_ARGS))
def test_every_example_runs_in_simulate_mode(cli: Cli, name: str) -> None:
    document = run_json(cli, name, "--simulate", *RUN_ARGS[name])
    assert document["status"] == "succeeded"
    assert document["completed_nodes"] >= 2
    assert document["error"] is None


@pytest.mark.parametrize("name", sorted(RUN_ARGS))
def test_every_example_shows_live_events_and_a_node_table(cli: Cli, name: str) -> None:
    result = cli("run", example(name), *RUN_ARGS[name], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stdout + result.stderr
    workflow = json.loads((EXAMPLES / name).read_text())
    assert "started" in result.stdout
    for node in workflow["nodes"]:
        assert node["id"] in result.stdout
        assert node["node_type"] in result.stdout
    assert "succeeded" in result.stdout.splitlines()[-1]


# -- github_zen: the seed's example --------------------------------------------------------


def test_github_zen_fetches_from_an_allowed_local_server(cli: Cli, zen_server: ZenServer) -> None:
    document = run_json(
        cli,
        "github_zen.json",
        "--inputs-json",
        json.dumps({"url": {"type": "String", "value": zen_server.url}}),
        env={"RUNNEL_HTTP_ALLOWED_HOSTS": "127.0.0.1"},
    )
    assert document["status"] == "succeeded"
    assert (document["completed_nodes"], document["total_nodes"]) == (2, 2)
    assert document["outputs"] == {"log": {"message": ZEN}}
    fetch = document["nodes"]["fetch"]
    assert fetch["status"] == "succeeded"
    assert fetch["outputs"]["status"] == 200
    assert fetch["outputs"]["body"] == ZEN
    assert zen_server.requests == ["/zen"]


def test_github_zen_refuses_loopback_unless_the_host_is_allowed(
    cli: Cli, zen_server: ZenServer
) -> None:
    document = run_json(cli, "github_zen.json", "--input", f"url={zen_server.url}", env={})
    assert document["status"] == "failed"
    assert document["nodes"]["fetch"]["status"] == "failed"
    assert document["nodes"]["log"]["status"] in ("skipped", "pending", "cancelled")
    assert "RUNNEL_HTTP_ALLOWED_HOSTS" in document["nodes"]["fetch"]["error"]
    assert document["error"]
    assert zen_server.requests == []


def test_github_zen_in_simulate_mode_sends_nothing(cli: Cli, zen_server: ZenServer) -> None:
    document = run_json(
        cli,
        "github_zen.json",
        "--simulate",
        "--input",
        f"url={zen_server.url}",
        env={"RUNNEL_HTTP_ALLOWED_HOSTS": "127.0.0.1"},
    )
    assert document["status"] == "succeeded"
    fetch = document["nodes"]["fetch"]["outputs"]
    assert fetch["status"] == 0
    assert "dry run" in fetch["body"]
    assert document["outputs"]["log"]["message"] == fetch["body"]
    assert zen_server.requests == []


def test_github_zen_without_a_url_fails_with_a_clear_error(cli: Cli) -> None:
    document = run_json(cli, "github_zen.json")
    assert document["status"] == "failed"
    assert "url" in document["nodes"]["fetch"]["error"]


# -- branching, switch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ran", "skipped", "message"),
    [
        ("250", "log_review", "log_auto", "order of 250 from ada goes to manual review"),
        ("20", "log_auto", "log_review", "order of 20 from ada is auto-approved"),
    ],
)
def test_branching_runs_only_the_chosen_branch(
    cli: Cli, amount: str, ran: str, skipped: str, message: str
) -> None:
    document = run_json(
        cli, "branching.json", "--input", f"amount={amount}", "--input", "customer=ada"
    )
    assert document["status"] == "succeeded"
    assert document["outputs"] == {ran: {"message": message}}
    assert document["nodes"][skipped]["status"] == "skipped"
    assert document["nodes"]["review" if skipped == "log_review" else "auto"]["status"] == (
        "skipped"
    )
    assert (document["completed_nodes"], document["total_nodes"]) == (4, 6)


@pytest.mark.parametrize(
    ("args", "port", "message"),
    [
        (["kind=email"], "email", "email to ops@example.com"),
        (["kind=sms", "to=+15550100"], "sms", "text message to +15550100"),
        (["kind=fax"], "unknown", "no channel for kind fax"),
        (["kind=email", "priority=high"], "page", "paging on-call for ops@example.com"),
    ],
)
def test_switch_routes_by_kind_and_priority(
    cli: Cli, args: list[str], port: str, message: str
) -> None:
    inputs = [arg for pair in args for arg in ("--input", pair)]
    document = run_json(cli, "switch.json", *inputs)
    assert document["status"] == "succeeded"
    assert document["outputs"] == {port: {"message": message}}
    logs = {"page", "email", "sms", "unknown"}
    for other in logs - {port}:
        assert document["nodes"][other]["status"] == "skipped"


# -- fan-out / merge -----------------------------------------------------------------------


def test_fan_out_merge_joins_every_branch(cli: Cli) -> None:
    document = run_json(cli, "fan_out_merge.json")
    assert document["status"] == "succeeded"
    assert (document["completed_nodes"], document["total_nodes"]) == (9, 9)
    stats = {"count": {"result": 8}, "max": {"result": 9}, "sum": {"result": 31}}
    assert document["nodes"]["merge"]["outputs"]["by_port"] == stats
    assert document["nodes"]["merge"]["outputs"]["value"] == [
        {"result": 31},
        {"result": 9},
        {"result": 8},
    ]
    assert document["outputs"]["log"] == {"message": json.dumps(stats, separators=(",", ":"))}
    assert document["outputs"]["popup"] == {"value": stats}


def test_fan_out_merge_shows_the_popup(cli: Cli) -> None:
    result = cli("run", example("fan_out_merge.json"), env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert 'popup Statistics: {"sum":{"result":31}' in result.stdout


# -- retries -------------------------------------------------------------------------------


def test_retry_demo_retries_the_node_and_the_workflow(cli: Cli) -> None:
    document = run_json(cli, "retry_demo.json")
    assert document["status"] == "succeeded"
    # Two tries in each of the two failing workflow attempts, then one that parses.
    assert document["nodes"]["parse"]["attempts"] == 5
    assert document["nodes"]["parse"]["outputs"] == {"parsed": {"ok": True, "workflow_attempt": 3}}
    assert document["outputs"] == {"log": {"message": "parsed on workflow attempt 3"}}


def test_retry_demo_prints_every_failed_try(cli: Cli) -> None:
    result = cli("run", example("retry_demo.json"), env={"COLUMNS": "200"})
    assert result.exit_code == 0
    out = result.stdout
    assert out.count("(will retry)") == 2
    for attempt in (1, 2, 3, 4):
        assert f"parse failed on attempt {attempt}" in out
    assert "workflow attempt 2" in out
    assert "workflow attempt 3" in out
    assert "succeeded (5 tries)" in out


# -- approval ------------------------------------------------------------------------------


def test_approval_waits_and_names_the_waiting_node(cli: Cli) -> None:
    document = run_json(cli, "approval.json")
    assert document["status"] == "waiting"
    assert document["waiting"] == ["approve"]
    assert document["nodes"]["approve"]["status"] == "waiting"
    assert document["nodes"]["ship"]["status"] == "pending"
    result = cli("run", example("approval.json"), env={"COLUMNS": "200"})
    assert result.exit_code == 3
    assert "approve waits for approval: Ship the laptop for 1200?" in result.stdout
    assert "--approve approve" in result.stdout


def test_approval_approved_ships(cli: Cli) -> None:
    document = run_json(cli, "approval.json", "--approve", "approve")
    assert document["status"] == "succeeded"
    assert document["waiting"] == []
    assert document["outputs"] == {"log_shipped": {"message": "laptop: shipped"}}
    decision = document["nodes"]["approve"]["outputs"]["decision"]
    assert decision["approved"] is True
    assert decision["by"] == "cli"
    assert document["nodes"]["cancel"]["status"] == "skipped"


def test_approval_rejected_cancels(cli: Cli) -> None:
    document = run_json(cli, "approval.json", "--reject", "approve")
    assert document["status"] == "succeeded"
    assert document["outputs"] == {"log_cancelled": {"message": "laptop: cancelled"}}
    assert document["nodes"]["approve"]["outputs"]["decision"]["approved"] is False
    assert document["nodes"]["ship"]["status"] == "skipped"


# -- transforms and sub-workflows -----------------------------------------------------------


def test_transform_chain_computes_the_summary(cli: Cli) -> None:
    document = run_json(cli, "transform_chain.json", "--input", "discount=50")
    assert document["status"] == "succeeded"
    summary = {
        "customer": "Ada Lovelace",
        "items": 6,
        "line": "Ada Lovelace bought 6 items",
        "order": "A-17",
        "total": 9.0,
    }
    assert json.loads(document["outputs"]["log"]["message"]) == summary
    assert document["nodes"]["summary"]["outputs"] == {"value": summary}
    totals = document["nodes"]["totals"]["outputs"]["value"]
    assert (totals["item_count"], totals["subtotal"], totals["discount_pct"]) == (6, 18.0, 50)


def test_subworkflow_runs_the_transform_chain_as_a_child(cli: Cli) -> None:
    document = run_json(cli, "subworkflow.json", "--input", "discount=25")
    assert document["status"] == "succeeded"
    child = document["nodes"]["child"]["outputs"]
    summary = json.loads(child["value"])
    assert summary["total"] == 13.5
    assert child["outputs"] == {"log": {"message": child["value"]}}
    assert document["outputs"]["log"]["message"] == f"child said: {child['value']}"
