"""flow8's names for execution and node statuses: the one place they are mapped.

A flow8 *play* is an execution, a *layer* is a node run. Their states (PROTOCOLS.md, flow8)
are ``NEW, RUN, DONE, FAIL, SKIP, FILTERED, DEFERRED, WAIT, ON_HOLD``. Most follow from the
canonical status alone; three need a look at the node runs:

- a play whose execution succeeded but one of whose layers was ``filtered`` ended
  ``FILTERED`` (the filter stopped the chain) rather than ``DONE``;
- a waiting execution is ``WAIT`` when some node waits for someone (an approval), and
  ``DEFERRED`` when its nodes only wait for a time (a ``deferAfterMs`` or a parked delay);
- a failed node whose flowlet said ``onError: skip`` shows ``SKIP`` (see
  ``runnel.services.flows``: such a node continues on its error port so the chain goes on).

``PLAY_STATE_RULES`` states the play rules as data, so that the store's state filter (SQL)
and ``play_state`` (Python) cannot disagree: both read this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from runnel.model.execution import ExecutionStatus, NodeStatus

__all__ = [
    "PLAY_STATE_RULES",
    "NodeCondition",
    "PlayState",
    "PlayStateRule",
    "error_code",
    "is_timer_wait",
    "layer_state",
    "play_state",
]


class PlayState(StrEnum):
    NEW = "NEW"
    RUN = "RUN"
    DONE = "DONE"
    FAIL = "FAIL"
    SKIP = "SKIP"
    FILTERED = "FILTERED"
    DEFERRED = "DEFERRED"
    WAIT = "WAIT"
    ON_HOLD = "ON_HOLD"


class NodeCondition(StrEnum):
    """What a rule asks of an execution's node runs besides its status."""

    ANY = "any"
    #: Some node run is ``filtered``.
    SOME_FILTERED = "some_filtered"
    NONE_FILTERED = "none_filtered"
    #: Some node waits for something other than a time (an approval, an event).
    SOME_WAIT_FOR_SOMEONE = "some_wait_for_someone"
    NONE_WAIT_FOR_SOMEONE = "none_wait_for_someone"


@dataclass(frozen=True, slots=True)
class PlayStateRule:
    statuses: frozenset[ExecutionStatus]
    condition: NodeCondition = NodeCondition.ANY


#: Exactly one rule matches any (status, node runs); states that are only layer states
#: (``SKIP``) have none.
PLAY_STATE_RULES: Final[Mapping[PlayState, PlayStateRule]] = {
    PlayState.NEW: PlayStateRule(frozenset({ExecutionStatus.QUEUED})),
    PlayState.RUN: PlayStateRule(frozenset({ExecutionStatus.RUNNING})),
    PlayState.ON_HOLD: PlayStateRule(frozenset({ExecutionStatus.PAUSED})),
    PlayState.WAIT: PlayStateRule(
        frozenset({ExecutionStatus.WAITING}), NodeCondition.SOME_WAIT_FOR_SOMEONE
    ),
    PlayState.DEFERRED: PlayStateRule(
        frozenset({ExecutionStatus.WAITING}), NodeCondition.NONE_WAIT_FOR_SOMEONE
    ),
    PlayState.DONE: PlayStateRule(
        frozenset({ExecutionStatus.SUCCEEDED}), NodeCondition.NONE_FILTERED
    ),
    PlayState.FILTERED: PlayStateRule(
        frozenset({ExecutionStatus.SUCCEEDED}), NodeCondition.SOME_FILTERED
    ),
    PlayState.FAIL: PlayStateRule(frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})),
}

_LAYER_STATES: Final[Mapping[NodeStatus, PlayState]] = {
    NodeStatus.PENDING: PlayState.NEW,
    NodeStatus.RUNNING: PlayState.RUN,
    NodeStatus.SUCCEEDED: PlayState.DONE,
    NodeStatus.FAILED: PlayState.FAIL,
    NodeStatus.SKIPPED: PlayState.SKIP,
    NodeStatus.FILTERED: PlayState.FILTERED,
    # WAITING is decided by what it waits for (layer_state).
    NodeStatus.WAITING: PlayState.WAIT,
    NodeStatus.CANCELLED: PlayState.FAIL,
}


def is_timer_wait(wait: Mapping[str, Any] | None) -> bool:
    """Whether a waiting node waits only for a time (``{"kind": "timer", ...}``)."""
    return bool(wait) and wait is not None and wait.get("kind") == "timer"


def layer_state(
    status: NodeStatus, wait: Mapping[str, Any] | None = None, *, skip_on_error: bool = False
) -> PlayState:
    """The flow8 state of one node run. ``skip_on_error``: its flowlet said
    ``onError: skip``, so a failure shows as ``SKIP``."""
    if status is NodeStatus.WAITING:
        return PlayState.DEFERRED if is_timer_wait(wait) else PlayState.WAIT
    if status is NodeStatus.FAILED and skip_on_error:
        return PlayState.SKIP
    return _LAYER_STATES[status]


def _holds(
    condition: NodeCondition, runs: list[tuple[NodeStatus, Mapping[str, Any] | None]]
) -> bool:
    if condition is NodeCondition.ANY:
        return True
    filtered = any(status is NodeStatus.FILTERED for status, _ in runs)
    if condition is NodeCondition.SOME_FILTERED:
        return filtered
    if condition is NodeCondition.NONE_FILTERED:
        return not filtered
    for_someone = any(
        status is NodeStatus.WAITING and not is_timer_wait(wait) for status, wait in runs
    )
    if condition is NodeCondition.SOME_WAIT_FOR_SOMEONE:
        return for_someone
    return not for_someone


def play_state(
    status: ExecutionStatus, runs: Iterable[tuple[NodeStatus, Mapping[str, Any] | None]] = ()
) -> PlayState:
    """The flow8 state of an execution with ``status`` whose node runs are ``runs``
    (``(status, wait)`` pairs; only needed for succeeded and waiting executions)."""
    listed = list(runs)
    for state, rule in PLAY_STATE_RULES.items():
        if status in rule.statuses and _holds(rule.condition, listed):
            return state
    raise AssertionError(f"no play state for {status!r}")  # the table covers every status


def error_code(kind: str | None) -> str:
    """A ``NodeError.kind`` as a flow8 error code: ``cancelled`` -> ``CANCELLED``."""
    text = (kind or "error").strip() or "error"
    return "".join(ch if ch.isalnum() else "_" for ch in text).upper()
