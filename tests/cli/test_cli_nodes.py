"""``runnel nodes``: the catalogue of node types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runnel.engine.registry import default_registry

Cli = Callable[..., Any]

ISSUE_TYPES = {
    "http.request",
    "debug.log",
    "debug.popup",
    "transform.json_parse",
    "transform.json_stringify",
    "transform.set",
    "time.delay",
    "logic.if",
    "logic.switch",
    "flow.merge",
    "flow.subworkflow",
    "data.static",
    "human.approval",
}


def test_nodes_json_lists_every_registered_type_with_its_manifest(cli: Cli) -> None:
    result = cli("nodes", "--json")
    assert result.exit_code == 0
    entries = result.json()
    types = [entry["type"] for entry in entries]
    assert types == sorted(types)
    assert set(types) == {manifest.type for manifest in default_registry().manifests()}
    assert set(types) >= ISSUE_TYPES
    for entry in entries:
        assert {"type", "category", "description", "aliases", "inputs", "outputs", "config"} <= (
            set(entry)
        )
        assert entry["description"]
        for port in entry["inputs"] + entry["outputs"]:
            assert set(port) == {"name", "description"}
        for field in entry["config"]:
            assert {"name", "type", "required", "default", "description"} <= set(field)


def test_nodes_json_describes_ports_and_config(cli: Cli) -> None:
    entries = {entry["type"]: entry for entry in cli("nodes", "--json").json()}
    http = entries["http.request"]
    assert http["category"] == "http"
    assert [port["name"] for port in http["inputs"]] == ["url", "body"]
    assert {"status", "body", "headers"} <= {port["name"] for port in http["outputs"]}
    assert http["side_effects"] is True
    delay = next(f for f in entries["time.delay"]["config"] if f["name"] == "delay_ms")
    assert delay["required"] is True
    assert delay["type"] == "integer"
    assert delay["minimum"] == 0
    level = next(f for f in entries["debug.log"]["config"] if f["name"] == "level")
    assert "warning" in level["enum"]
    assert "approval" in entries["human.approval"]["aliases"]
    assert entries["logic.switch"]["dynamic_outputs"] is True
    assert entries["flow.merge"]["dynamic_inputs"] is True


def test_nodes_table_lists_every_type(cli: Cli) -> None:
    result = cli("nodes", env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for node_type in ISSUE_TYPES:
        assert node_type in result.stdout
    assert f"{len(default_registry())} node types" in result.stdout
