"""A Flowork ``workflow_data`` converted to the canonical model runs through the real executor
with the built-in nodes: popups, error ports, branches, ``{{vars.NAME}}``, tool connections."""

from __future__ import annotations

from typing import Any

import pytest

from runnel.engine.executor import Executor
from runnel.engine.registry import NodeRegistry, default_registry
from runnel.engine.run import ExecutionResult, RunRequest
from runnel.engine.validation import ensure_valid
from runnel.model.events import EventType
from runnel.model.execution import ExecutionStatus, NodeStatus
from runnel.model.flowork import workflow_from_flowork
from runnel.model.workflow import OnError, Workflow
from runnel.services.components import flowork_ports
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink


@pytest.fixture(scope="module")
def registry() -> NodeRegistry:
    return default_registry()


def node(node_id: str, module_id: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id.title(),
        "x": 0,
        "y": 0,
        "module_id": module_id,
        "config_values": config,
        "data": {},
    }


def link(
    source: str, target: str, port: str | None = "output", kind: str = "data"
) -> dict[str, Any]:
    return {
        "id": f"{source}-{port}-{target}",
        "source": source,
        "target": target,
        "source_port_name": port,
        "target_port_name": None,
        "type": kind,
        "animated": True,
    }


def convert(registry: NodeRegistry, nodes: list[Any], connections: list[Any]) -> Workflow:
    workflow = workflow_from_flowork(
        {"nodes": nodes, "connections": connections},
        workflow_id="wf-flowork",
        name="flowork",
        ports=flowork_ports(registry),
    )
    ensure_valid(workflow, registry)
    return workflow


async def run(
    registry: NodeRegistry,
    workflow: Workflow,
    inputs: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
) -> tuple[ExecutionResult, RecordingEventSink]:
    sink = RecordingEventSink()
    executor = Executor(registry, MemoryCheckpointStore(), sink)
    request = RunRequest("ex-1", workflow, inputs or {}, variables=variables or {})
    return await executor.run(request), sink


def popups(sink: RecordingEventSink) -> dict[str | None, Any]:
    return {event.node_id: event.data for event in sink.of_type(EventType.DEBUG_POPUP)}


async def test_popups_show_the_inputs_and_rendered_variables(registry: NodeRegistry) -> None:
    workflow = convert(
        registry,
        [
            node("start", "prompt_receiver_module"),
            node("show", "debug_popup_module", title="{{vars.TITLE}}"),
            node("data", "static_data_provider_module", data={"greeting": "Hello {{vars.NAME}}"}),
            node("greet", "debug_popup_module"),
            node("tick", "cron_trigger", cron_string="0 * * * *"),
        ],
        [link("start", "show"), link("data", "greet", None), link("data", "start", kind="tool")],
    )
    result, sink = await run(
        registry, workflow, {"prompt": "hi"}, {"TITLE": "Prompt", "NAME": "Ann"}
    )
    assert result.status is ExecutionStatus.SUCCEEDED
    assert popups(sink) == {
        # A tool connection does not make ``start`` wait: it receives the run's inputs.
        "show": {"title": "Prompt", "content": {"prompt": "hi"}},
        "greet": {"title": "Greet", "content": {"greeting": "Hello Ann"}},
    }
    assert result.outputs["tick"] == {"value": {"prompt": "hi"}}


async def test_a_failure_goes_out_of_the_error_port(registry: NodeRegistry) -> None:
    workflow = convert(
        registry,
        [
            node("data", "static_data_provider_module", data="not json"),
            node("parse", "json_parse"),
            node("ok", "debug_popup_module"),
            node("failed", "debug_popup_module"),
        ],
        [link("data", "parse"), link("parse", "ok"), link("parse", "failed", "error")],
    )
    assert workflow.node("parse").on_error is OnError.CONTINUE
    result, sink = await run(registry, workflow)
    assert result.status is ExecutionStatus.SUCCEEDED
    runs = result.node_runs
    assert (runs["parse"].status, runs["ok"].status) == (NodeStatus.FAILED, NodeStatus.SKIPPED)
    failure = popups(sink)["failed"]["content"]
    assert failure["failed_node_id"] == "parse"
    assert "JSON" in failure["error"] or "json" in failure["error"]
    assert set(failure) >= {"error", "failed_node_id"}


async def test_without_an_error_connection_the_failure_stops_the_run(
    registry: NodeRegistry,
) -> None:
    workflow = convert(
        registry,
        [node("data", "static_data_provider_module", data="{"), node("parse", "json_parse")],
        [link("data", "parse")],
    )
    result, _ = await run(registry, workflow)
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.details["node_id"] == "parse"


@pytest.mark.parametrize(("flag", "taken", "dead"), [(True, "yes", "no"), (False, "no", "yes")])
async def test_only_the_fired_port_carries_on(
    registry: NodeRegistry, flag: bool, taken: str, dead: str
) -> None:
    workflow = convert(
        registry,
        [
            node("data", "static_data_provider_module", data={"flag": "{{vars.FLAG}}"}),
            node("branch", "if", condition="{{ $input.value.flag }}"),
            node("yes", "debug_popup_module"),
            node("no", "debug_popup_module"),
        ],
        [link("data", "branch"), link("branch", "yes", "true"), link("branch", "no", "false")],
    )
    result, sink = await run(registry, workflow, variables={"FLAG": flag})
    assert result.status is ExecutionStatus.SUCCEEDED
    assert list(popups(sink)) == [taken]
    assert popups(sink)[taken]["content"] == {"flag": flag}
    assert result.node_runs[dead].status is NodeStatus.SKIPPED
