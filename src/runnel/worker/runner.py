"""Running one claimed execution: what the embedded and the cluster worker share."""

from __future__ import annotations

import logging
from collections import OrderedDict

from runnel.engine.control import ExecutionControl
from runnel.engine.executor import Executor
from runnel.engine.run import RunRequest
from runnel.model.workflow import Workflow
from runnel.store import SqlStore

__all__ = ["ExecutionRunner"]

log = logging.getLogger(__name__)

_WORKFLOW_CACHE_SIZE = 512


class ExecutionRunner:
    """Loads a claimed execution and the workflow version it runs, and runs or resumes it."""

    def __init__(
        self, store: SqlStore, executor: Executor, *, history_in_memory: bool = False
    ) -> None:
        self.store = store
        self.executor = executor
        #: ``RunRequest.history_in_memory`` for the runs (the embedded worker's).
        self.history_in_memory = history_in_memory
        self._workflows: OrderedDict[tuple[str, int], Workflow] = OrderedDict()

    async def run(self, execution_id: str, control: ExecutionControl) -> None:
        """Run ``execution_id`` from its last checkpoint; errors propagate to the worker."""
        execution = await self.store.get_execution(execution_id)
        if execution is None:
            return
        workflow = await self.workflow(execution.workflow_id, execution.workflow_version)
        if workflow is None:
            log.error("execution %s: workflow %s is gone", execution_id, execution.workflow_id)
            return
        resume = None
        if execution.started_at is not None:
            resume = await self.store.resume_state(execution_id)
        await self.executor.run(
            RunRequest(
                execution_id=execution.id,
                workflow=workflow,
                inputs=execution.inputs,
                mode=execution.mode,
                resume=resume,
                parent_id=execution.parent_id,
                attempt=execution.attempt,
                history_in_memory=self.history_in_memory,
            ),
            control,
        )

    async def workflow(self, workflow_id: str, version: int) -> Workflow | None:
        """Versions are immutable, so decoded definitions are kept (a small LRU)."""
        key = (workflow_id, version)
        workflow = self._workflows.get(key)
        if workflow is not None:
            self._workflows.move_to_end(key)
            return workflow
        workflow = await self.store.get_workflow(workflow_id, version, include_deleted=True)
        if workflow is not None:
            self._workflows[key] = workflow
            if len(self._workflows) > _WORKFLOW_CACHE_SIZE:
                self._workflows.popitem(last=False)
        return workflow
