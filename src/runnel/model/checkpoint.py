"""What the executor hands the store, and what the store hands back to resume a run.

Plain data, so that both the engine and the store can use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runnel.model._fastinit import fast_init
from runnel.model.events import Event
from runnel.model.execution import Execution, ExecutionStatus, NodeError, NodeRun

__all__ = ["Checkpoint", "ExecutionUpdate", "ResumeState"]


@dataclass(frozen=True, slots=True)
class ExecutionUpdate:
    """A change of the execution row itself."""

    status: ExecutionStatus
    started_at: float | None = None
    finished_at: float | None = None
    error: NodeError | None = None
    outputs: Mapping[str, Mapping[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything that must be durable together: committed in one transaction.

    A node's result and its status change travel in the same checkpoint, with the events
    emitted since the previous one.
    """

    execution_id: str
    workflow_id: str
    #: Insert this execution row first (child executions of ``flow.subworkflow``).
    create: Execution | None = None
    node_runs: Sequence[NodeRun] = ()
    events: Sequence[Event] = ()
    execution: ExecutionUpdate | None = None
    #: Set on the last checkpoint of a run (an end, or a wait).
    final: bool = field(default=False)
    #: The run ended and its workflow keeps no history of it (``settings.save_history``):
    #: delete the execution row, its node runs and its events instead of writing anything.
    discard: bool = field(default=False)


@dataclass(frozen=True, slots=True)
class ResumeState:
    """What the store knows of an execution that ran before (a takeover or a resume).

    Finished node runs are not run again: their outputs fire their edges once more. A node
    that was running runs again with the next attempt number. A waiting node runs again with
    its ``decision`` (approvals) or once its timer is due.
    """

    node_runs: Mapping[str, NodeRun] = field(default_factory=dict)
    #: The next event ``seq`` to use.
    next_seq: int = 1
    started_at: float | None = None


# Made per node run: the faster __init__ (same signature).
fast_init(ExecutionUpdate)
fast_init(Checkpoint)
