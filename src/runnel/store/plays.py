"""flow8's reads over workflows and executions: flows and plays a user may see, with
flow8's play-state filter, plus the scheduler's look at waiting timers and workflow heads.

Visibility: a workflow is seen by its owner and by the members of its group (the services
decide what each role may do; here only "may see at all" narrows a listing). ``viewer``
None lists everything (admins).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from runnel.model.execution import Execution, NodeStatus
from runnel.model.flow8 import PLAY_STATE_RULES, NodeCondition, PlayState
from runnel.model.workflow import Workflow
from runnel.store._repo import RepositoryMixin, float_or_none
from runnel.store.codec import loads, loads_or_none, workflow_from_dict
from runnel.store.rows import execution_from_row

__all__ = ["PlaysMixin", "WaitingNode", "WorkflowHead"]


@dataclass(frozen=True, slots=True)
class WaitingNode:
    """A node of a waiting, unqueued execution, with what it waits for."""

    execution_id: str
    node_id: str
    wait: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WorkflowHead:
    id: str
    latest_version: int
    deleted: bool


_EXECUTION_COLUMNS: Final = """
    e.id, e.workflow_id, e.workflow_version, e.status, e.mode, e.trigger, e.inputs,
    e.outputs, e.error, e.parent_id, e.attempt, e.created_at, e.started_at, e.finished_at"""
_VISIBLE: Final = """AND (w.owner = :viewer
    OR w.group_id IN (SELECT group_id FROM group_members WHERE user_id = :viewer))"""
_PLAYS_FROM: Final = """
FROM executions e JOIN workflows w ON w.id = e.workflow_id
WHERE 1 = 1 {where}
"""
_LIST_PLAYS: Final = f"""
SELECT {_EXECUTION_COLUMNS} {_PLAYS_FROM}
ORDER BY e.created_at DESC, e.id DESC LIMIT :limit OFFSET :offset
"""
_COUNT_PLAYS: Final = f"SELECT COUNT(*) {_PLAYS_FROM}"
_FLOWS_FROM: Final = """
FROM workflows w
JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version
WHERE w.deleted_at IS NULL {where}
"""
_LIST_FLOWS: Final = f"""
SELECT v.version, v.definition {_FLOWS_FROM}
ORDER BY w.created_at, w.id LIMIT :limit OFFSET :offset
"""
_COUNT_FLOWS: Final = f"SELECT COUNT(*) {_FLOWS_FROM}"
_WAITING_NODES: Final = """
SELECT n.execution_id, n.node_id, n.wait
FROM executions e JOIN node_runs n ON n.execution_id = e.id
WHERE e.status = 'waiting' AND e.queued_at IS NULL AND n.status = 'waiting'
  AND n.wait IS NOT NULL
"""
_HEADS: Final = "SELECT id, latest_version, deleted_at FROM workflows"
_NODE_STATES: Final = """
SELECT execution_id, status, wait FROM node_runs
WHERE execution_id IN ({ids}) AND status IN ('filtered', 'waiting')
"""


class PlaysMixin(RepositoryMixin):
    """flow8 listings, as methods of ``SqlStore``."""

    def _wait_kind(self, column: str) -> str:
        """SQL for the ``kind`` of a ``wait`` JSON column ('' when there is none)."""
        if self._is_postgres:
            return f"COALESCE(CAST({column} AS json) ->> 'kind', '')"
        return f"COALESCE(json_extract({column}, '$.kind'), '')"

    def _condition_sql(self, condition: NodeCondition) -> str:
        """``PLAY_STATE_RULES``' node conditions in SQL, as ``play_state`` reads them."""
        if condition is NodeCondition.ANY:
            return ""
        filtered = (
            "EXISTS (SELECT 1 FROM node_runs n WHERE n.execution_id = e.id"
            f" AND n.status = '{NodeStatus.FILTERED.value}')"
        )
        for_someone = (
            "EXISTS (SELECT 1 FROM node_runs n WHERE n.execution_id = e.id"
            f" AND n.status = '{NodeStatus.WAITING.value}'"
            f" AND {self._wait_kind('n.wait')} <> 'timer')"
        )
        return {
            NodeCondition.SOME_FILTERED: f"AND {filtered}",
            NodeCondition.NONE_FILTERED: f"AND NOT {filtered}",
            NodeCondition.SOME_WAIT_FOR_SOMEONE: f"AND {for_someone}",
            NodeCondition.NONE_WAIT_FOR_SOMEONE: f"AND NOT {for_someone}",
        }[condition]

    async def list_plays(
        self,
        viewer: str | None,
        *,
        workflow_id: str | None = None,
        state: PlayState | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[Execution], int]:
        """Executions of the workflows ``viewer`` may see, newest first, filtered by
        flow8 state; and how many match in all."""
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if viewer is not None:
            clauses.append(_VISIBLE)
            params["viewer"] = viewer
        if workflow_id is not None:
            clauses.append("AND e.workflow_id = :workflow_id")
            params["workflow_id"] = workflow_id
        if since is not None:
            clauses.append("AND e.created_at >= :since")
            params["since"] = since
        if until is not None:
            clauses.append("AND e.created_at < :until")
            params["until"] = until
        if state is not None:
            rule = PLAY_STATE_RULES.get(state)
            if rule is None:  # a layer-only state: no play is ever in it
                return [], 0
            names = sorted(status.value for status in rule.statuses)
            marks = ", ".join(f":status_{i}" for i in range(len(names)))
            clauses.append(f"AND e.status IN ({marks})")
            params.update({f"status_{i}": name for i, name in enumerate(names)})
            clauses.append(self._condition_sql(rule.condition))
        where = "\n".join(clause for clause in clauses if clause)
        rows = await self._fetch_all(_LIST_PLAYS.format(where=where), params)
        total = await self._scalar(_COUNT_PLAYS.format(where=where), params)
        return [execution_from_row(row) for row in rows], int(total or 0)

    async def play_node_states(
        self, execution_ids: Sequence[str]
    ) -> dict[str, list[tuple[NodeStatus, Mapping[str, Any] | None]]]:
        """For each execution, its filtered and waiting node runs: what ``play_state``
        needs beyond the status."""
        found: dict[str, list[tuple[NodeStatus, Mapping[str, Any] | None]]] = {
            execution_id: [] for execution_id in execution_ids
        }
        if not execution_ids:
            return found
        marks = ", ".join(f":id_{i}" for i in range(len(execution_ids)))
        params = {f"id_{i}": ident for i, ident in enumerate(execution_ids)}
        for row in await self._fetch_all(_NODE_STATES.format(ids=marks), params):
            found[row[0]].append((NodeStatus(row[1]), loads_or_none(row[2])))
        return found

    async def list_flows(
        self,
        viewer: str | None,
        *,
        group_id: str | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[Workflow], int]:
        """The latest version of the workflows ``viewer`` may see, oldest first."""
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if viewer is not None:
            clauses.append(_VISIBLE)
            params["viewer"] = viewer
        if group_id is not None:
            clauses.append("AND w.group_id = :group_id")
            params["group_id"] = group_id
        where = "\n".join(clauses)
        rows = await self._fetch_all(_LIST_FLOWS.format(where=where), params)
        total = await self._scalar(_COUNT_FLOWS.format(where=where), params)
        flows = [
            dataclasses.replace(workflow_from_dict(loads(row[1])), version=int(row[0]))
            for row in rows
        ]
        return flows, int(total or 0)

    async def waiting_nodes(self) -> list[WaitingNode]:
        """Nodes of waiting executions that are not queued yet, with their ``wait``."""
        rows = await self._fetch_all(_WAITING_NODES)
        found: list[WaitingNode] = []
        for row in rows:
            wait = loads_or_none(row[2])
            if isinstance(wait, Mapping):
                found.append(WaitingNode(row[0], row[1], wait))
        return found

    async def workflow_heads(self) -> list[WorkflowHead]:
        """Every workflow's id, latest version and whether it is deleted."""
        rows = await self._fetch_all(_HEADS)
        return [
            WorkflowHead(row[0], int(row[1]), float_or_none(row[2]) is not None) for row in rows
        ]
