"""The canonical workflow graph that every dialect converts to and from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_PORT",
    "Edge",
    "Node",
    "OnError",
    "Position",
    "RetryPolicy",
    "SaveHistory",
    "Trigger",
    "TriggerKind",
    "Workflow",
    "WorkflowOnError",
    "WorkflowOnErrorKind",
    "WorkflowSettings",
]

#: The port an edge uses when its dialect names none.
DEFAULT_PORT = "value"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class OnError(StrEnum):
    """What a node's final failure (after retries) does to the execution."""

    STOP = "stop"
    CONTINUE = "continue"
    SKIP = "skip"


class WorkflowOnErrorKind(StrEnum):
    STOP = "stop"
    CONTINUE = "continue"
    RETRY = "retry"


class TriggerKind(StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    WEBHOOK = "webhook"
    EVENT = "event"


class SaveHistory(StrEnum):
    """Which executions of a workflow keep their history in the store."""

    ALL = "all"
    FAILED = "failed"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Position:
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Per-node retry: ``max_attempts`` counts the first try too."""

    max_attempts: int = 1
    delay_ms: int = 0
    backoff_multiplier: float = 1.0
    max_delay_ms: int | None = None
    #: Fraction of each delay added or removed at random (0 = none, 0.5 = up to +-50%).
    jitter: float = 0.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2, 3, ...), without jitter."""
        delay = self.delay_ms * self.backoff_multiplier ** max(attempt - 2, 0)
        if self.max_delay_ms is not None:
            delay = min(delay, self.max_delay_ms)
        return max(delay, 0.0) / 1000.0


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a workflow. ``config`` is plain JSON whose strings may hold expressions."""

    id: str
    type: str
    name: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    position: Position | None = None
    retry: RetryPolicy | None = None
    timeout_ms: int | None = None
    on_error: OnError = OnError.STOP
    needs_approval: bool = False
    #: flow8 filter groups deciding whether the node runs (see engine.filters).
    filters: Any = None
    #: Dialect-specific fields kept so that a round trip through a dialect is lossless.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class Edge:
    """Carries the value of ``source``'s ``source_port`` to ``target``'s ``target_port``."""

    id: str
    source: str
    target: str
    source_port: str = DEFAULT_PORT
    target_port: str = DEFAULT_PORT
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    kind: TriggerKind = TriggerKind.MANUAL
    #: cron: ``expression`` (and ``timezone``); webhook: ``path``; event: ``event_type``.
    config: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class WorkflowOnError:
    kind: WorkflowOnErrorKind = WorkflowOnErrorKind.STOP
    #: For ``retry``: how many times the whole execution runs at most.
    max_attempts: int = 1


@dataclass(frozen=True, slots=True)
class WorkflowSettings:
    max_parallel_nodes: int = 10
    on_error: WorkflowOnError = field(default_factory=WorkflowOnError)
    max_execution_time_ms: int | None = None
    save_history: SaveHistory = SaveHistory.ALL
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Workflow:
    id: str
    name: str = ""
    description: str = ""
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    settings: WorkflowSettings = field(default_factory=WorkflowSettings)
    owner: str | None = None
    group: str | None = None
    #: Set by the store when saved: 1, 2, ... Each save is a new immutable version.
    version: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)
