"""flow8 plays: executions of flows, seen in flow8's terms (``runnel.model.flow8``).

A play's layers are the flow version's flowlets in order, each with the state of its node
run (``NEW`` until it has one). Approve and cancel need the ``run`` right on the flow;
seeing a play needs ``view``. Who decided an approval is recorded with the decision.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from runnel.model.execution import Execution, NodeRun, NodeStatus
from runnel.model.flow8 import PlayState, error_code, layer_state, play_state
from runnel.model.workflow import Node, Workflow
from runnel.services.access import Access, Action
from runnel.services.accounts import Principal
from runnel.services.errors import Conflict, NotFound
from runnel.services.executions import ExecutionService
from runnel.services.flows import FLOW8_KEY, flow_resource
from runnel.store import SqlStore

__all__ = ["Layer", "Play", "PlayError", "PlayService", "node_skips_on_error", "play_of"]

_CACHE_SIZE: Final = 512


@dataclass(frozen=True, slots=True)
class PlayError:
    code: str
    message: str
    #: The flowlet it happened in, if any.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Layer:
    id: str
    ref: str
    app_id: str
    state: PlayState
    attempts: int = 0
    started_at: float | None = None
    completed_at: float | None = None
    out: Mapping[str, Any] | None = None
    error: PlayError | None = None
    #: What a waiting layer waits for: ``{"kind": "approval"|"timer", ...}``.
    wait: Mapping[str, Any] | None = None
    #: Who approved or rejected it, when it needed an approval.
    decision: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Play:
    id: str
    flow_id: str
    flow_version: int
    state: PlayState
    args: Mapping[str, Any]
    trigger: str
    created_at: float | None
    started_at: float | None
    completed_at: float | None
    error: PlayError | None = None
    #: Outputs of the last flowlets that ran, by ref.
    out: Mapping[str, Any] | None = None


def node_skips_on_error(node: Node | None) -> bool:
    """Whether a node's flowlet said ``onError: skip`` (its failure shows as SKIP)."""
    if node is None:
        return False
    meta = node.extra.get(FLOW8_KEY)
    return isinstance(meta, Mapping) and meta.get("onError") == "skip"


def _ref(node: Node | None, node_id: str) -> str:
    return node.name or node.id if node is not None else node_id


def _play_error(execution: Execution, workflow: Workflow | None) -> PlayError | None:
    error = execution.error
    if error is None:
        return None
    node_id = error.details.get("node_id")
    ref = None
    if isinstance(node_id, str):
        node = _node(workflow, node_id)
        ref = _ref(node, node_id)
    return PlayError(error_code(error.kind), error.message, ref)


def _node(workflow: Workflow | None, node_id: str) -> Node | None:
    if workflow is None:
        return None
    for node in workflow.nodes:
        if node.id == node_id:
            return node
    return None


def play_of(
    execution: Execution,
    runs: builtins.list[tuple[NodeStatus, Mapping[str, Any] | None]],
    workflow: Workflow | None,
) -> Play:
    """The flow8 view of an execution (``runs``: its filtered and waiting node runs, at
    least)."""
    outputs = execution.outputs or {}
    out = {
        _ref(_node(workflow, node_id), node_id): dict(ports) for node_id, ports in outputs.items()
    }
    return Play(
        id=execution.id,
        flow_id=execution.workflow_id,
        flow_version=execution.workflow_version,
        state=play_state(execution.status, runs),
        args=execution.inputs,
        trigger=execution.trigger,
        created_at=execution.created_at,
        started_at=execution.started_at,
        completed_at=execution.finished_at,
        error=_play_error(execution, workflow),
        out=out or None,
    )


def _layer(node: Node, run: NodeRun | None) -> Layer:
    meta = node.extra.get(FLOW8_KEY)
    app_id = str(meta.get("appId") or node.type) if isinstance(meta, Mapping) else node.type
    if run is None:
        return Layer(node.id, _ref(node, node.id), app_id, PlayState.NEW)
    error = None
    if run.error is not None:
        error = PlayError(error_code(run.error.kind), run.error.message, _ref(node, node.id))
    decision = None
    if run.decision is not None:
        decision = {
            "approved": run.decision.approved,
            "by": run.decision.by,
            "comment": run.decision.comment,
            "at": run.decision.at,
        }
    return Layer(
        id=node.id,
        ref=_ref(node, node.id),
        app_id=app_id,
        state=layer_state(run.status, run.wait, skip_on_error=node_skips_on_error(node)),
        attempts=run.attempt,
        started_at=run.started_at,
        completed_at=run.finished_at,
        out=run.outputs,
        error=error,
        wait=run.wait if run.status is NodeStatus.WAITING else None,
        decision=decision,
    )


class PlayService:
    """Plays of the flows a caller may see."""

    def __init__(self, store: SqlStore, executions: ExecutionService, access: Access) -> None:
        self.store = store
        self.executions = executions
        self.access = access
        self._versions: OrderedDict[tuple[str, int], Workflow] = OrderedDict()

    async def version(self, workflow_id: str, version: int) -> Workflow | None:
        """A workflow version (immutable, so kept in a small cache)."""
        key = (workflow_id, version)
        found = self._versions.get(key)
        if found is not None:
            self._versions.move_to_end(key)
            return found
        found = await self.store.get_workflow(workflow_id, version, include_deleted=True)
        if found is not None:
            self._versions[key] = found
            if len(self._versions) > _CACHE_SIZE:
                self._versions.popitem(last=False)
        return found

    async def _execution(
        self, principal: Principal, play_id: str, action: Action
    ) -> tuple[Execution, Workflow | None]:
        execution = await self.store.get_execution(play_id)
        if execution is None:
            raise NotFound("play", play_id)
        latest = await self.store.get_workflow(execution.workflow_id, include_deleted=True)
        if latest is None:
            raise NotFound("play", play_id)
        try:
            await self.access.check(principal, flow_resource(latest), action)
        except NotFound:
            raise NotFound("play", play_id) from None
        workflow = await self.version(execution.workflow_id, execution.workflow_version)
        return execution, workflow

    async def get(self, principal: Principal, play_id: str) -> Play:
        execution, workflow = await self._execution(principal, play_id, Action.VIEW)
        runs = await self.store.node_runs(play_id)
        return play_of(execution, [(run.status, run.wait) for run in runs], workflow)

    async def state_of(self, play_id: str) -> PlayState | None:
        """A play's state without a permission check (for event streams that checked)."""
        execution = await self.store.get_execution(play_id)
        if execution is None:
            return None
        runs = await self.store.node_runs(play_id)
        return play_state(execution.status, [(run.status, run.wait) for run in runs])

    async def list(
        self,
        principal: Principal,
        *,
        flow_id: str | None = None,
        state: PlayState | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[builtins.list[Play], int]:
        """Plays of the flows the caller may see, newest first."""
        executions, total = await self.store.list_plays(
            Access.viewer(principal),
            workflow_id=flow_id,
            state=state,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        states = await self.store.play_node_states([e.id for e in executions])
        plays = []
        for execution in executions:
            workflow = await self.version(execution.workflow_id, execution.workflow_version)
            plays.append(play_of(execution, states.get(execution.id, []), workflow))
        return plays, total

    async def layers(self, principal: Principal, play_id: str) -> builtins.list[Layer]:
        """Every flowlet of the play's flow version, with what happened to it."""
        _, workflow = await self._execution(principal, play_id, Action.VIEW)
        runs = {run.node_id: run for run in await self.store.node_runs(play_id)}
        if workflow is None:
            return []
        return [_layer(node, runs.get(node.id)) for node in workflow.nodes]

    async def approve(
        self,
        principal: Principal,
        play_id: str,
        ref: str,
        approved: bool,
        comment: str | None = None,
    ) -> Play:
        """Decide the approval the flowlet ``ref`` (or layer id) waits for; the decider
        is recorded. ``Conflict`` if it does not wait for one."""
        _, workflow = await self._execution(principal, play_id, Action.RUN)
        node = None
        if workflow is not None:
            node = next((n for n in workflow.nodes if n.name == ref), None) or _node(workflow, ref)
        if node is None:
            raise NotFound("layer", ref)
        await self.executions.approve(
            play_id, node.id, approved, by=principal.user_id, comment=comment
        )
        return await self.get(principal, play_id)

    async def cancel(self, principal: Principal, play_id: str) -> Play:
        """Cancel a play that has not ended: it ends ``FAIL`` with code ``CANCELLED``."""
        execution, _ = await self._execution(principal, play_id, Action.RUN)
        if execution.status.finished:
            raise Conflict(f"Play {play_id} already ended")
        await self.executions.cancel(play_id, reason=f"cancelled by {principal.user_id}")
        return await self.get(principal, play_id)
