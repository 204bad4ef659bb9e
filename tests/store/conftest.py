"""Store fixtures: every test runs on a fresh SQLite file, and on a fresh PostgreSQL
database when ``RUNNEL_TEST_POSTGRES_URL`` is set (skipped otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from runnel.model import Execution
from runnel.store import SqlStore

from .helpers import simple_workflow

NewExecution = Callable[..., Awaitable[Execution]]


@pytest.fixture
async def new_execution(store: SqlStore) -> NewExecution:
    """``await new_execution(id, workflow_id="wf", **fields)``: saves the workflow once and
    creates an execution of its latest version."""
    saved: dict[str, int] = {}

    async def create(
        execution_id: str | None = None,
        workflow_id: str = "wf",
        *,
        enqueue: bool = False,
        **fields: object,
    ) -> Execution:
        if workflow_id not in saved:
            saved[workflow_id] = (await store.save_workflow(simple_workflow(workflow_id))).version
        execution = Execution(
            id=execution_id or uuid.uuid4().hex,
            workflow_id=workflow_id,
            workflow_version=saved[workflow_id],
            **fields,  # type: ignore[arg-type]
        )
        return await store.create_execution(execution, enqueue=enqueue)

    return create
