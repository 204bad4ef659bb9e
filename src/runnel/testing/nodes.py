"""Build a ``NodeContext`` for unit tests of node types, with an emit that records.

Usage::

    ctx = make_context(HttpRequest(), config={"url": "..."}, services=services)
    outputs = await HttpRequest().run(ctx)
    assert emitted(ctx)[0].message == "GET ..."
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runnel.engine.node import NodeContext, NodeOutput, NodeType
from runnel.engine.services import NodeServices
from runnel.model.execution import ApprovalDecision, ExecutionMode
from runnel.model.workflow import Node

__all__ = ["EmittedEvent", "RecordingEmitter", "emitted", "make_context", "run_node"]


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """One ``ctx.emit(kind, message, **data)`` call."""

    kind: str
    message: str
    data: Mapping[str, Any]


@dataclass(slots=True)
class RecordingEmitter:
    """A ``NodeEventEmitter`` that keeps every event, in order."""

    events: list[EmittedEvent] = field(default_factory=list)

    def __call__(self, kind: str, message: str = "", /, **data: Any) -> None:
        self.events.append(EmittedEvent(kind, message, data))

    def of_kind(self, kind: str) -> list[EmittedEvent]:
        """The recorded events of one kind (``info``, ``log``, ``popup``...)."""
        return [event for event in self.events if event.kind == kind]


def make_context(
    node_type: NodeType | str = "test.node",
    *,
    config: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    arrivals: tuple[tuple[str, str, Any], ...] = (),
    simulate: bool = False,
    services: NodeServices | None = None,
    decision: ApprovalDecision | None = None,
    wait_state: Mapping[str, Any] | None = None,
    depth: int = 0,
    variables: Mapping[str, Any] | None = None,
    node_id: str = "node-1",
    node_name: str | None = None,
    execution_id: str = "exec-1",
    workflow_id: str = "wf-1",
    attempt: int = 1,
    emit: RecordingEmitter | None = None,
) -> NodeContext:
    """A context for one run of ``node_type`` (a node type or a type id).

    ``config`` is taken as already rendered. When only ``arrivals`` are given, ``inputs`` are
    derived from them as the executor does (the last arrival on a port wins).
    """
    type_id = node_type if isinstance(node_type, str) else node_type.manifest.type
    config = dict(config or {})
    if inputs is None:
        inputs = {port: value for _source, port, value in arrivals}
    return NodeContext(
        node=Node(id=node_id, type=type_id, name=node_name, config=config),
        inputs=dict(inputs),
        config=config,
        execution_id=execution_id,
        workflow_id=workflow_id,
        mode=ExecutionMode.SIMULATE if simulate else ExecutionMode.EXECUTE,
        attempt=attempt,
        services=services if services is not None else NodeServices(),
        emit=emit if emit is not None else RecordingEmitter(),
        decision=decision,
        wait_state=wait_state,
        depth=depth,
        variables=dict(variables or {}),
        arrivals=arrivals,
    )


def emitted(ctx: NodeContext) -> RecordingEmitter:
    """The recorder of a context built by ``make_context``."""
    if not isinstance(ctx.emit, RecordingEmitter):
        raise TypeError("this context was not built by make_context: its emit does not record")
    return ctx.emit


async def run_node(node_type: NodeType, **kwargs: Any) -> tuple[NodeOutput, RecordingEmitter]:
    """Build a context with ``make_context(node_type, **kwargs)``, run it once, and return
    the outputs with the recorded events."""
    ctx = make_context(node_type, **kwargs)
    outputs = await node_type.run(ctx)
    return outputs, emitted(ctx)
