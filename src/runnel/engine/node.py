"""The node protocol: what a node type declares (its manifest) and what it is given to run.

A node type is any object with a ``manifest`` and an async ``run(ctx)`` that returns the ports
that fired, with their values. A port left out of the result does not fire, so its edges are
dead (this is how ``logic.if`` picks a branch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from runnel.model.execution import ApprovalDecision, ExecutionMode
from runnel.model.workflow import Node

if TYPE_CHECKING:
    from runnel.engine.services import NodeServices

__all__ = [
    "ConfigField",
    "FieldType",
    "NodeContext",
    "NodeEventEmitter",
    "NodeManifest",
    "NodeOutput",
    "NodeType",
    "PortSpec",
]

#: Ports that fired -> their values.
NodeOutput = Mapping[str, Any]


class FieldType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One key of a node's config. A string holding an expression fits any type until run."""

    name: str
    type: FieldType = FieldType.ANY
    required: bool = False
    default: Any = None
    description: str = ""
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    #: Masked wherever config is shown (passwords, tokens).
    secret: bool = False


@dataclass(frozen=True, slots=True)
class PortSpec:
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class NodeManifest:
    """What the catalogue, validation and the dialects know about a node type."""

    type: str
    category: str
    description: str
    aliases: tuple[str, ...] = ()
    config: tuple[ConfigField, ...] = ()
    inputs: tuple[PortSpec, ...] = ()
    outputs: tuple[PortSpec, ...] = ()
    #: Accept edges into any input port name (e.g. flow.merge takes any port).
    dynamic_inputs: bool = False
    #: Output ports mirror the input ports that edges use (``time.delay`` passes its inputs
    #: through port by port), so any source port name is valid.
    dynamic_outputs: bool = False
    #: Output ports that depend on the config (e.g. one port per logic.switch case).
    output_ports_for: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    #: Touches the world: in simulate mode it returns ``pinned_output`` or a dry-run description.
    side_effects: bool = False
    #: Touches nothing outside the run (no world, no store): the node may start before the
    #: checkpoints of the nodes before it are committed, since running it again after a
    #: crash changes nothing (docs/architecture.md, "Durability and scale"). Off by
    #: default: a node type must declare it.
    pure: bool = False
    #: Flowork manifest type (ACTION, LOGIC, CONTROL_FLOW, TRIGGER...).
    kind: str = "ACTION"
    #: Given the config, whether the node runs as soon as one incoming edge fires instead of
    #: waiting for every incoming edge to resolve (``flow.merge`` with ``mode: first``).
    runs_on_first_input: Callable[[Mapping[str, Any]], bool] | None = None

    def output_port_names(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        if self.output_ports_for is not None:
            return self.output_ports_for(config)
        return tuple(port.name for port in self.outputs)

    def input_port_names(self) -> tuple[str, ...]:
        return tuple(port.name for port in self.inputs)


class NodeEventEmitter(Protocol):
    def __call__(self, kind: str, message: str = "", /, **data: Any) -> None: ...


@dataclass(slots=True)
class NodeContext:
    """Everything one attempt of one node is given. One object, so it can grow."""

    node: Node
    #: Input values by port name (when several fired edges target one port, the last in edge
    #: order wins, as in Flow Engine; ``arrivals`` has them all).
    inputs: Mapping[str, Any]
    #: The node's config with every expression already evaluated.
    config: Mapping[str, Any]
    execution_id: str
    workflow_id: str
    mode: ExecutionMode
    attempt: int
    services: NodeServices
    #: ``kind`` is info, warning, progress, data, log or popup.
    emit: NodeEventEmitter
    #: The decision on this node's approval, once there is one.
    decision: ApprovalDecision | None = None
    #: What this node waited for before, when the execution resumes it.
    wait_state: Mapping[str, Any] | None = None
    #: Nesting depth of sub-workflows (0 for a top-level execution).
    depth: int = 0
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: Every fired incoming edge in edge order: (source node id, target port, value).
    arrivals: tuple[tuple[str, str, Any], ...] = ()

    @property
    def idempotency_key(self) -> str:
        """Stable across a takeover, new for every retry: ``execution:node:attempt``."""
        return f"{self.execution_id}:{self.node.id}:{self.attempt}"

    @property
    def simulate(self) -> bool:
        return self.mode is ExecutionMode.SIMULATE


class NodeType(Protocol):
    """A built-in or plug-in node type."""

    @property
    def manifest(self) -> NodeManifest: ...

    async def run(self, ctx: NodeContext) -> NodeOutput: ...
