"""Store fixtures: every test runs on a fresh SQLite file, and on a fresh PostgreSQL
database when ``RUNNEL_TEST_POSTGRES_URL`` is set (skipped otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool

from runnel.model import Execution
from runnel.store import SqlStore
from runnel.store.connect import normalize_url

from .helpers import simple_workflow

POSTGRES_URL = os.environ.get("RUNNEL_TEST_POSTGRES_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("RUNNEL_TEST_POSTGRES_URL is not set")
    server = normalize_url(POSTGRES_URL)
    name = f"runnel_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runnel.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """An open, migrated store; closed after the test."""
    opened = SqlStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


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
