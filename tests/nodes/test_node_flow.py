"""``flow.merge``, ``time.delay`` and ``flow.subworkflow``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from runnel.engine.node import NodeContext
from runnel.engine.services import NodeServices
from runnel.engine.signals import NodeFailure, WaitUntil
from runnel.nodes.flow import Delay, Merge, Subworkflow
from runnel.testing.nodes import make_context, run_node

ARRIVALS = (("a", "left", 1), ("b", "right", 2), ("c", "left", 3))


async def test_merge_all_lists_arrivals_in_edge_order() -> None:
    out, _ = await run_node(Merge(), arrivals=ARRIVALS)
    assert out == {"value": [1, 2, 3], "by_port": {"left": 3, "right": 2}}


async def test_merge_first_takes_the_first_arrival() -> None:
    out, _ = await run_node(Merge(), arrivals=ARRIVALS, config={"mode": "first"})
    assert out == {"value": 1, "by_port": {"left": 1}}


async def test_merge_without_arrivals_uses_its_inputs() -> None:
    out, _ = await run_node(Merge(), inputs={"x": "a", "y": "b"})
    assert out == {"value": ["a", "b"], "by_port": {"x": "a", "y": "b"}}
    out, _ = await run_node(Merge(), config={"mode": "first"})
    assert out == {"value": None, "by_port": {}}


async def test_merge_refuses_an_unknown_mode() -> None:
    with pytest.raises(NodeFailure, match="config 'mode' must be all or first, got 'any'"):
        await run_node(Merge(), arrivals=ARRIVALS, config={"mode": "any"})


def test_merge_manifest_declares_dynamic_inputs_and_first_input_mode() -> None:
    manifest = Merge.manifest
    assert manifest.dynamic_inputs
    assert manifest.runs_on_first_input is not None
    assert manifest.runs_on_first_input({"mode": "first"}) is True
    assert manifest.runs_on_first_input({"mode": " FIRST "}) is True
    assert manifest.runs_on_first_input({"mode": "all"}) is False
    assert manifest.runs_on_first_input({}) is False


async def test_delay_waits_and_passes_every_input_through() -> None:
    started = time.monotonic()
    out, _ = await run_node(Delay(), inputs={"body": "b", "status": 200}, config={"delay_ms": 20})
    assert time.monotonic() - started >= 0.019
    assert out == {"body": "b", "status": 200}
    assert Delay.manifest.dynamic_outputs
    assert Delay.manifest.dynamic_inputs


async def test_delay_without_inputs_fires_value() -> None:
    out, _ = await run_node(Delay(), config={"delay_ms": "0"})
    assert out == {"value": None}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "time.delay needs config 'delay_ms'"),
        ({"delay_ms": -1}, "config 'delay_ms' must be at least 0, got -1"),
        ({"delay_ms": "soon"}, "config 'delay_ms' must be an integer, got 'soon'"),
        ({"delay_ms": True}, "config 'delay_ms' must be an integer"),
    ],
)
async def test_delay_bad_config(config: dict[str, Any], message: str) -> None:
    with pytest.raises(NodeFailure, match=message):
        await run_node(Delay(), inputs={"value": 1}, config=config)


PARKING = NodeServices(park_delays_over_ms=1000)


async def test_long_delay_parks_the_execution() -> None:
    before = time.time()
    with pytest.raises(WaitUntil) as info:
        await run_node(Delay(), inputs={"value": 1}, config={"delay_ms": 60_000}, services=PARKING)
    assert before + 60 <= info.value.due_at <= time.time() + 60
    assert info.value.wait == {"kind": "timer", "due_at": info.value.due_at}


async def test_short_delay_sleeps_in_place_even_when_parking_is_on() -> None:
    out, _ = await run_node(Delay(), inputs={"value": 1}, config={"delay_ms": 5}, services=PARKING)
    assert out == {"value": 1}


async def test_parked_delay_passes_through_once_due() -> None:
    wait = {"kind": "timer", "due_at": time.time() - 1}
    out, _ = await run_node(
        Delay(), inputs={"value": 1}, config={"delay_ms": 60_000}, services=PARKING, wait_state=wait
    )
    assert out == {"value": 1}


async def test_parked_delay_resumed_early_keeps_its_deadline() -> None:
    due_at = time.time() + 30
    with pytest.raises(WaitUntil) as info:
        await run_node(
            Delay(),
            config={"delay_ms": 60_000},
            services=PARKING,
            wait_state={"kind": "timer", "due_at": due_at},
        )
    assert info.value.due_at == due_at


class FakeRunner:
    """Records calls and answers with fixed child outputs."""

    def __init__(self, result: Mapping[str, Mapping[str, Any]]) -> None:
        self.result = result
        self.calls: list[tuple[str, dict[str, Any], NodeContext]] = []

    async def __call__(
        self, workflow_id: str, inputs: Mapping[str, Any], ctx: NodeContext
    ) -> Mapping[str, Mapping[str, Any]]:
        self.calls.append((workflow_id, dict(inputs), ctx))
        return self.result


async def test_subworkflow_passes_node_inputs_and_returns_the_single_value() -> None:
    runner = FakeRunner({"end": {"value": 42}})
    ctx = make_context(
        Subworkflow(),
        inputs={"x": 1},
        config={"workflow_id": " child "},
        services=NodeServices(run_subworkflow=runner),
        depth=2,
    )
    out = await Subworkflow().run(ctx)
    assert out == {"outputs": {"end": {"value": 42}}, "value": 42}
    assert runner.calls == [("child", {"x": 1}, ctx)]


async def test_subworkflow_config_inputs_replace_the_node_inputs() -> None:
    runner = FakeRunner({"a": {"x": 1}, "b": {"y": 2}})
    out, _ = await run_node(
        Subworkflow(),
        inputs={"ignored": True},
        config={"workflow_id": "child", "inputs": {"n": 5}},
        services=NodeServices(run_subworkflow=runner),
    )
    assert runner.calls[0][1] == {"n": 5}
    # Several end nodes: `value` carries all of them, like `outputs`.
    assert out == {
        "outputs": {"a": {"x": 1}, "b": {"y": 2}},
        "value": {"a": {"x": 1}, "b": {"y": 2}},
    }


async def test_subworkflow_refuses_beyond_the_depth_limit() -> None:
    runner = FakeRunner({})
    with pytest.raises(NodeFailure, match="nesting depth limit of 3 reached") as info:
        await run_node(
            Subworkflow(),
            config={"workflow_id": "me"},
            services=NodeServices(run_subworkflow=runner, max_subworkflow_depth=3),
            depth=3,
        )
    assert info.value.kind == "depth"
    assert runner.calls == []


async def test_subworkflow_needs_a_runner_and_an_id() -> None:
    with pytest.raises(NodeFailure, match="no sub-workflow runner") as info:
        await run_node(Subworkflow(), config={"workflow_id": "child"})
    assert info.value.kind == "unavailable"
    runner = FakeRunner({})
    with pytest.raises(NodeFailure, match="needs config 'workflow_id'"):
        await run_node(Subworkflow(), services=NodeServices(run_subworkflow=runner))
    with pytest.raises(NodeFailure, match="config 'inputs' must be an object"):
        await run_node(
            Subworkflow(),
            config={"workflow_id": "c", "inputs": [1]},
            services=NodeServices(run_subworkflow=runner),
        )


async def test_subworkflow_child_failure_propagates() -> None:
    async def failing(workflow_id: str, inputs: Mapping[str, Any], ctx: NodeContext) -> Any:
        raise NodeFailure(f"sub-workflow {workflow_id} failed: boom", kind="subworkflow")

    with pytest.raises(NodeFailure, match="sub-workflow child failed: boom"):
        await run_node(
            Subworkflow(),
            config={"workflow_id": "child"},
            services=NodeServices(run_subworkflow=failing),
        )
