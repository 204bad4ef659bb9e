"""Every built-in family loads into the registry with a coherent manifest."""

from __future__ import annotations

import pytest

from runnel.engine.registry import default_registry
from runnel.engine.services import NodeServices
from runnel.testing.nodes import emitted, make_context

EXPECTED = {
    "http.request": {"curl"},
    "debug.log": {"log"},
    "debug.popup": {"popup", "debug_popup_module"},
    "transform.json_parse": {"json_parse"},
    "transform.json_stringify": {"json_stringify"},
    "transform.set": {"set"},
    "time.delay": {"delay"},
    "logic.if": {"if"},
    "logic.switch": {"switch"},
    "flow.merge": {"merge"},
    "flow.subworkflow": {"subworkflow"},
    "data.static": {"static", "static_data_provider_module"},
    "human.approval": {"approval"},
    "notify.channel": {"notify"},
    "trigger.cron": {"cron", "cron_trigger"},
    "trigger.prompt": {"prompt", "prompt_receiver_module"},
}


def test_registry_has_every_builtin_with_its_aliases() -> None:
    registry = default_registry()
    assert {m.type: set(m.aliases) for m in registry.manifests()} == EXPECTED
    assert registry.canonical("curl") == "http.request"
    assert registry.canonical("debug_popup_module") == "debug.popup"


@pytest.mark.parametrize("type_id", sorted(EXPECTED))
def test_manifest_is_coherent(type_id: str) -> None:
    manifest = default_registry().get(type_id).manifest
    assert manifest.category == type_id.split(".", 1)[0]
    assert manifest.description
    assert manifest.kind in {"ACTION", "LOGIC", "CONTROL_FLOW", "TRIGGER"}
    assert manifest.output_port_names({}), "a node must have a port to fire"
    names = [field.name for field in manifest.config]
    assert len(names) == len(set(names))
    for field in manifest.config:
        if field.enum is not None and field.default is not None:
            assert field.default in field.enum
    if manifest.side_effects:
        assert "pinned_output" in names


def test_only_http_and_notify_touch_the_world() -> None:
    assert [m.type for m in default_registry().manifests() if m.side_effects] == [
        "http.request",
        "notify.channel",
    ]


def test_flow_engine_ports_match_the_protocol() -> None:
    registry = default_registry()
    ports = {
        t: (registry.get(t).manifest.input_port_names(), registry.get(t).manifest.outputs)
        for t in ("http.request", "debug.log", "transform.json_parse", "transform.json_stringify")
    }
    assert ports["http.request"][0] == ("url", "body")
    assert {"status", "body", "headers"} <= {p.name for p in ports["http.request"][1]}
    assert ports["debug.log"][0] == ("message",)
    assert ports["transform.json_parse"][0] == ("json",)
    assert [p.name for p in ports["transform.json_parse"][1]] == ["parsed"]
    assert ports["transform.json_stringify"][0] == ("value",)


def test_make_context_builds_a_recording_context() -> None:
    services = NodeServices()
    ctx = make_context(
        "debug.log",
        arrivals=(("a", "x", 1), ("b", "x", 2)),
        simulate=True,
        services=services,
        node_name="Log",
        attempt=3,
    )
    assert ctx.inputs == {"x": 2}
    assert ctx.simulate
    assert ctx.services is services
    assert ctx.node.label == "Log"
    assert ctx.node.type == "debug.log"
    assert ctx.idempotency_key == "exec-1:node-1:3"
    ctx.emit("info", "hi", extra=1)
    assert [(e.kind, e.message, dict(e.data)) for e in emitted(ctx).of_kind("info")] == [
        ("info", "hi", {"extra": 1})
    ]
