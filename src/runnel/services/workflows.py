"""Workflow use cases: create, update (a new version), read, list, delete."""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

from runnel.engine.expressions import ExpressionEngine
from runnel.engine.registry import NodeRegistry
from runnel.engine.validation import Problem, validate
from runnel.model.workflow import TriggerKind, Workflow
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore, WorkflowVersionInfo

__all__ = ["WorkflowService", "problems_of", "webhook_path"]

#: Decoded workflow definitions kept by ``WorkflowService.get`` (SQLite only).
_CACHE_SIZE: Final = 512


def webhook_path(path: object) -> str:
    """The one normal form of a webhook path: no leading or trailing slash."""
    return str(path or "").strip().strip("/")


def problems_of(problems: Iterable[Problem]) -> list[ProblemDetail]:
    """Validation problems as the services' ``ProblemDetail``s, naming the node or edge."""
    details = []
    for problem in problems:
        where = None
        if problem.node_id is not None:
            where = f"node {problem.node_id!r}"
        elif problem.edge_id is not None:
            where = f"edge {problem.edge_id!r}"
        if problem.path:
            where = f"{where} {problem.path}" if where else problem.path
        details.append(ProblemDetail(problem.message, where, problem.code))
    return details


class WorkflowService:
    def __init__(
        self, store: SqlStore, registry: NodeRegistry, expressions: ExpressionEngine
    ) -> None:
        self.store = store
        self.registry = registry
        self.expressions = expressions
        self._webhooks: dict[str, str] | None = None
        # Decoded definitions by (id, version; None for the latest), so that a webhook or an
        # execute does not read and decode its workflow on every request. Only where this
        # process is the only writer (SQLite: the lock file refuses a second process); every
        # save or delete here clears it. On PostgreSQL another process may change them.
        self._cache: OrderedDict[tuple[str, int | None], Workflow] | None = (
            OrderedDict() if store.dialect == "sqlite" else None
        )

    def check(self, workflow: Workflow) -> None:
        """Raise ``InvalidInput`` listing every problem of ``workflow``."""
        problems = validate(workflow, self.registry, self.expressions)
        if problems:
            details = problems_of(problems)
            summary = "; ".join(str(d) for d in details[:5])
            more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
            raise InvalidInput(f"invalid workflow: {summary}{more}", details)

    async def create(self, workflow: Workflow, actor: str | None = None) -> Workflow:
        """Save a new workflow as version 1; ``Conflict`` when the id is taken."""
        self.check(workflow)
        if await self.store.workflow_exists(workflow.id):
            raise Conflict(f"Workflow {workflow.id} already exists")
        await self._claim_webhooks(workflow)
        saved = await self.store.save_workflow(workflow, created_by=actor)
        self._changed()
        return saved

    async def update(
        self, workflow_id: str, workflow: Workflow, actor: str | None = None
    ) -> Workflow:
        """Save ``workflow`` as the next version of ``workflow_id``."""
        if workflow.id != workflow_id:
            raise InvalidInput(
                f"the body's id {workflow.id!r} is not the path's id {workflow_id!r}",
                [ProblemDetail("does not match the path", "id")],
            )
        self.check(workflow)
        if not await self.store.workflow_exists(workflow_id):
            raise NotFound("workflow", workflow_id)
        await self._claim_webhooks(workflow)
        saved = await self.store.save_workflow(workflow, created_by=actor)
        self._changed()
        return saved

    def _changed(self) -> None:
        self._webhooks = None
        if self._cache is not None:
            self._cache.clear()

    async def get(self, workflow_id: str, version: int | None = None) -> Workflow:
        cache = self._cache
        if cache is not None:
            cached = cache.get((workflow_id, version))
            if cached is not None:
                return cached
        workflow = await self.store.get_workflow(workflow_id, version)
        if workflow is not None:
            if cache is not None:
                cache[(workflow_id, version)] = workflow
                if len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
            return workflow
        if workflow is None:
            if version is not None and await self.store.workflow_exists(workflow_id):
                raise NotFound("version", f"{version} of workflow {workflow_id}")
            raise NotFound("workflow", workflow_id)
        return workflow

    async def list(self) -> builtins.list[Workflow]:
        return await self.store.list_workflows()

    async def delete(self, workflow_id: str) -> None:
        """Delete ``workflow_id``: it is no longer found nor executable; its runs stay."""
        if not await self.store.delete_workflow(workflow_id):
            raise NotFound("workflow", workflow_id)
        self._changed()

    async def versions(self, workflow_id: str) -> builtins.list[WorkflowVersionInfo]:
        versions = await self.store.list_versions(workflow_id)
        if not versions:
            raise NotFound("workflow", workflow_id)
        return versions

    async def find_by_webhook(self, path: str) -> Workflow | None:
        """The workflow whose enabled webhook trigger listens on ``path``."""
        routes = self._webhooks
        if routes is None:
            routes = self._webhooks = await self._webhook_routes()
        workflow_id = routes.get(webhook_path(path))
        if workflow_id is None:
            return None
        try:
            return await self.get(workflow_id)
        except NotFound:
            return None

    async def _webhook_routes(self) -> dict[str, str]:
        routes: dict[str, str] = {}
        for workflow in await self.store.list_workflows():
            for path in _webhook_paths(workflow):
                routes.setdefault(path, workflow.id)
        return routes

    async def _claim_webhooks(self, workflow: Workflow) -> None:
        """``Conflict`` when another workflow already listens on one of these paths."""
        routes = await self._webhook_routes()
        for path in _webhook_paths(workflow):
            owner = routes.get(path)
            if owner is not None and owner != workflow.id:
                raise Conflict(f"webhook path {path!r} is taken by workflow {owner}")


def _webhook_paths(workflow: Workflow) -> builtins.list[str]:
    return [
        webhook_path(trigger.config.get("path"))
        for trigger in workflow.triggers
        if trigger.kind is TriggerKind.WEBHOOK and trigger.enabled
    ]
