"""Flowork component manifests (``request_components_list``) from the node registry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runnel.engine.registry import NodeRegistry, default_registry
from runnel.model.flowork import ModulePorts
from runnel.services.components import (
    COMPONENT_KINDS,
    component_manifests,
    flowork_ports,
)
from runnel.services.errors import InvalidInput

MANIFEST_KEYS = {
    "id",
    "name",
    "version",
    "author",
    "description",
    "type",
    "properties",
    "output_ports",
    "output_schema",
    "icon_file",
}


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    return default_registry()


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in items}


def test_modules_are_the_non_trigger_nodes_under_their_flowork_ids(
    registry: NodeRegistry,
) -> None:
    modules = component_manifests(registry, "modules")
    ids = [item["id"] for item in modules]
    assert ids == sorted(ids)
    assert {"debug_popup_module", "static_data_provider_module", "logic.if"} <= set(ids)
    assert "debug.popup" not in ids  # listed under its Flowork id
    assert not {"cron_trigger", "prompt_receiver_module"} & set(ids)
    assert all(item["type"] != "TRIGGER" for item in modules)
    nodes = {m.type for m in registry.manifests() if m.kind != "TRIGGER"}
    assert {item["node_type"] for item in modules} == nodes


def test_triggers_are_the_trigger_nodes(registry: NodeRegistry) -> None:
    triggers = by_id(component_manifests(registry, "triggers"))
    assert set(triggers) == {"cron_trigger", "prompt_receiver_module"}
    cron = triggers["cron_trigger"]
    assert cron["type"] == "TRIGGER"
    assert cron["properties"] == [
        {
            "id": "cron_string",
            "type": "string",
            "label": "Cron string",
            "description": cron["properties"][0]["description"],
            "default": "*/5 * * * *",
        }
    ]


@pytest.mark.parametrize("kind", ["plugins", "tools"])
def test_plugins_and_tools_are_empty(registry: NodeRegistry, kind: str) -> None:
    assert component_manifests(registry, kind) == []


@pytest.mark.parametrize("kind", ["module", "", "MODULES", None, 3])
def test_an_unknown_kind_is_invalid_input(registry: NodeRegistry, kind: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        component_manifests(registry, kind)
    assert "component_type" in info.value.message
    assert info.value.problems[0].where == "component_type"


@pytest.mark.parametrize("kind", COMPONENT_KINDS)
def test_every_manifest_has_the_flowork_fields_and_is_json(
    registry: NodeRegistry, kind: str
) -> None:
    for item in component_manifests(registry, kind):
        assert set(item) >= MANIFEST_KEYS
        assert item["description"]
        assert item["type"] in {"ACTION", "LOGIC", "CONTROL_FLOW", "TRIGGER"}
        for prop in item["properties"]:
            assert set(prop) >= {"id", "type", "label", "description", "default"}
        for port in item["output_ports"]:
            assert set(port) == {"name", "display_name", "tooltip"}
        assert item["output_ports"][-1]["name"] == "error"
        json.dumps(item, allow_nan=False)


def test_properties_describe_the_config(registry: NodeRegistry) -> None:
    modules = by_id(component_manifests(registry, "modules"))
    popup = modules["debug_popup_module"]
    assert (popup["name"], popup["type"], popup["author"]) == ("Popup", "ACTION", "runnel")
    assert [port["name"] for port in popup["output_ports"]] == ["value", "error"]
    assert [entry["name"] for entry in popup["output_schema"]] == ["value"]
    level = next(p for p in modules["debug.log"]["properties"] if p["id"] == "level")
    assert (level["type"], level["default"]) == ("enum", "info")
    assert "warning" in level["options"]
    assert [p["name"] for p in modules["logic.if"]["output_ports"]] == ["true", "false", "error"]


def test_flowork_ports_resolve_aliases(registry: NodeRegistry) -> None:
    ports = flowork_ports(registry)
    assert ports("debug_popup_module", {}) == ModulePorts(("value",), ("value",))
    assert ports("static_data_provider_module", {}) == ModulePorts((), ("data",))
    assert ports("cron_trigger", {}) == ModulePorts(("value",), ("value",))
    assert ports("function_runner_module", {}) is None
    switch = ports("logic.switch", {"cases": [{"port": "a", "value": 1}]})
    assert switch is not None and switch.outputs[0] == "a"
    # A config the port function cannot read falls back to the declared ports.
    broken = ports("logic.switch", {"cases": "nope"})
    assert broken is not None and broken.outputs == ("default",)
