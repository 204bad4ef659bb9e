"""Flow control: ``flow.merge``, ``time.delay`` and ``flow.subworkflow``.

``time.delay`` lives here because a ``runnel.nodes.time`` module would shadow the standard
library's ``time`` for code run from inside the package directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from runnel.engine.node import (
    ConfigField,
    FieldType,
    NodeContext,
    NodeManifest,
    NodeOutput,
    NodeType,
    PortSpec,
)
from runnel.engine.signals import NodeFailure, WaitUntil
from runnel.nodes._support import as_int, as_mapping

__all__ = ["NODE_TYPES", "Delay", "Merge", "Subworkflow", "merge_runs_on_first_input"]

MERGE_MODES = ("all", "first")

_MODE = ConfigField(
    "mode",
    FieldType.STRING,
    default="all",
    enum=MERGE_MODES,
    description="all: wait for every incoming edge; first: run on the first one that fires.",
)
_DELAY_MS = ConfigField(
    "delay_ms", FieldType.INTEGER, required=True, minimum=0, description="How long to wait."
)
_WORKFLOW_ID = ConfigField(
    "workflow_id", FieldType.STRING, required=True, description="The stored workflow to run."
)
_INPUTS = ConfigField(
    "inputs", FieldType.OBJECT, description="Inputs of the child (default: this node's inputs)."
)


def merge_runs_on_first_input(config: Mapping[str, Any]) -> bool:
    """``mode: first`` runs the merge as soon as one incoming edge fires."""
    mode = config.get(_MODE.name)
    return isinstance(mode, str) and mode.strip().lower() == "first"


class Merge:
    """Join branches: ``value`` is the list of arrived values (mode all) or the first one.

    Fires ``value`` and ``by_port`` (target port -> value, the last arrival winning when
    several edges target one port). A merge with no arrivals (a start node) uses its inputs.
    """

    manifest = NodeManifest(
        type="flow.merge",
        category="flow",
        description="Join parallel branches",
        aliases=("merge",),
        config=(_MODE,),
        inputs=(PortSpec("value", "Any port name is accepted"),),
        outputs=(
            PortSpec("value", "mode all: list of values in edge order; mode first: the value"),
            PortSpec("by_port", "Input port -> value"),
        ),
        dynamic_inputs=True,
        runs_on_first_input=merge_runs_on_first_input,
        kind="CONTROL_FLOW",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Fires ``value`` and ``by_port``."""
        raw_mode = ctx.config.get(_MODE.name)
        mode = "all" if raw_mode is None else str(raw_mode).strip().lower()
        if mode not in MERGE_MODES:
            raise NodeFailure(f"config 'mode' must be all or first, got {raw_mode!r}", "config")
        arrivals = ctx.arrivals or tuple(("", port, v) for port, v in ctx.inputs.items())
        if mode == "first":
            if not arrivals:
                return {"value": None, "by_port": {}}
            _source, port, value = arrivals[0]
            return {"value": value, "by_port": {port: value}}
        return {
            "value": [value for _source, _port, value in arrivals],
            "by_port": {port: value for _source, port, value in arrivals},
        }


class Delay:
    """Wait ``delay_ms``, then pass every input through on the port of the same name.

    A start node without inputs fires ``value`` with ``None`` so that a chain goes on. When
    the host parks long delays (``services.park_delays_over_ms``), a longer delay raises
    ``WaitUntil`` and the execution waits in the store instead of holding a worker; it runs
    again when due, with ``wait_state`` saying what it waited for.
    """

    manifest = NodeManifest(
        type="time.delay",
        category="time",
        description="Wait, then pass the inputs on",
        aliases=("delay",),
        config=(_DELAY_MS,),
        inputs=(PortSpec("value", "Any port name is accepted"),),
        outputs=(PortSpec("value", "Each input leaves on the port of its name"),),
        dynamic_inputs=True,
        dynamic_outputs=True,
        kind="CONTROL_FLOW",
        pure=True,
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Sleep (or park) for ``delay_ms``; fires the inputs unchanged."""
        if ctx.config.get(_DELAY_MS.name) is None:
            raise NodeFailure("time.delay needs config 'delay_ms'", kind="config")
        delay_ms = as_int(ctx.config[_DELAY_MS.name], _DELAY_MS.name, minimum=0)
        outputs: NodeOutput = dict(ctx.inputs) if ctx.inputs else {"value": None}
        park_over = ctx.services.park_delays_over_ms
        if park_over is None or delay_ms <= park_over:
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000.0)
            return outputs
        due_at = _previous_due_at(ctx.wait_state)
        if due_at is None:
            raise WaitUntil(time.time() + delay_ms / 1000.0)
        if due_at > time.time():
            # Resumed early (a takeover, a clock step): keep the first deadline, do not restart.
            raise WaitUntil(due_at)
        return outputs


def _previous_due_at(wait_state: Mapping[str, Any] | None) -> float | None:
    if not wait_state or wait_state.get("kind") != "timer":
        return None
    due_at = wait_state.get("due_at")
    if isinstance(due_at, int | float) and not isinstance(due_at, bool):
        return float(due_at)
    return None


class Subworkflow:
    """Run another stored workflow as a child execution and return its end-node outputs.

    Fires ``outputs`` (child node id -> port -> value) and ``value``: the child's single
    output value when it has exactly one end node with exactly one fired port, else the same
    mapping as ``outputs`` (so that a ``value`` edge always carries the result).
    """

    manifest = NodeManifest(
        type="flow.subworkflow",
        category="flow",
        description="Run another workflow with inputs",
        aliases=("subworkflow",),
        config=(_WORKFLOW_ID, _INPUTS),
        inputs=(PortSpec("value", "Any port name is accepted; inputs of the child"),),
        outputs=(
            PortSpec("outputs", "Child end-node outputs: node id -> port -> value"),
            PortSpec("value", "The child's single output value (else all outputs)"),
        ),
        dynamic_inputs=True,
        kind="CONTROL_FLOW",
    )

    async def run(self, ctx: NodeContext) -> NodeOutput:
        """Run the child through ``services.run_subworkflow``, depth-limited."""
        workflow_id = ctx.config.get(_WORKFLOW_ID.name)
        if not isinstance(workflow_id, str) or not workflow_id.strip():
            raise NodeFailure("flow.subworkflow needs config 'workflow_id'", kind="config")
        runner = ctx.services.run_subworkflow
        if runner is None:
            raise NodeFailure(
                "flow.subworkflow cannot run here: the host provides no sub-workflow runner",
                kind="unavailable",
            )
        limit = ctx.services.max_subworkflow_depth
        if ctx.depth >= limit:
            raise NodeFailure(
                f"sub-workflow {workflow_id!r} not started: nesting depth limit of {limit} "
                "reached (does the workflow call itself?)",
                kind="depth",
                depth=ctx.depth,
            )
        raw_inputs = ctx.config.get(_INPUTS.name)
        inputs = dict(ctx.inputs) if raw_inputs is None else dict(as_mapping(raw_inputs, "inputs"))
        result = await runner(workflow_id.strip(), inputs, ctx)
        outputs = {node_id: dict(ports) for node_id, ports in result.items()}
        value: Any = outputs
        if len(outputs) == 1:
            (only,) = outputs.values()
            if len(only) == 1:
                (value,) = only.values()
        return {"outputs": outputs, "value": value}


NODE_TYPES: tuple[NodeType, ...] = (Merge(), Delay(), Subworkflow())
