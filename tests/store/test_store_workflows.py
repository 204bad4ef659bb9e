"""Workflows: every save a new immutable version, soft deletes that keep history."""

from __future__ import annotations

import dataclasses

import pytest

from runnel.model import Execution, Node
from runnel.store import ConflictError, SqlStore

from .helpers import full_workflow, simple_workflow


async def test_a_saved_workflow_comes_back_exactly(store: SqlStore) -> None:
    workflow = full_workflow()
    saved = await store.save_workflow(workflow, created_by="alice")
    assert saved == dataclasses.replace(workflow, version=1)
    assert await store.get_workflow(workflow.id) == saved
    assert await store.get_workflow(workflow.id, version=1) == saved


async def test_each_save_is_a_new_immutable_version(store: SqlStore) -> None:
    first = await store.save_workflow(simple_workflow("w", description="one"))
    second = await store.save_workflow(simple_workflow("w", description="two"), created_by="bob")
    assert (first.version, second.version) == (1, 2)
    assert await store.get_workflow("w") == second
    assert await store.get_workflow("w", version=1) == first
    assert await store.get_workflow("w", version=3) is None

    versions = await store.list_versions("w")
    assert [(v.version, v.created_by) for v in versions] == [(1, None), (2, "bob")]
    assert versions[0].created_at <= versions[1].created_at


async def test_missing_workflows_are_none(store: SqlStore) -> None:
    assert await store.get_workflow("nope") is None
    assert await store.list_versions("nope") == []
    assert not await store.workflow_exists("nope")
    assert not await store.delete_workflow("nope")


async def test_list_workflows_gives_the_latest_versions(store: SqlStore) -> None:
    await store.save_workflow(simple_workflow("a"))
    await store.save_workflow(simple_workflow("b"))
    latest_a = await store.save_workflow(simple_workflow("a", name="renamed"))
    listed = await store.list_workflows()
    assert [(w.id, w.version, w.name) for w in listed] == [
        ("a", 2, "renamed"),
        ("b", 1, "workflow b"),
    ]
    assert listed[0] == latest_a


async def test_delete_is_soft_and_keeps_history(store: SqlStore) -> None:
    saved = await store.save_workflow(simple_workflow("w"))
    execution = await store.create_execution(
        Execution(id="x1", workflow_id="w", workflow_version=saved.version)
    )

    assert await store.delete_workflow("w")
    assert not await store.delete_workflow("w")  # already deleted
    assert await store.get_workflow("w") is None
    assert await store.get_workflow("w", version=1) is None
    assert not await store.workflow_exists("w")
    assert await store.list_workflows() == []
    assert await store.list_versions("w") == []

    # History stays: the execution, and the version it ran for those who ask for it.
    assert await store.get_execution("x1") == execution
    assert await store.get_workflow("w", version=1, include_deleted=True) == saved

    # Saving it again brings it back with a fresh version number.
    again = await store.save_workflow(simple_workflow("w", nodes=(Node(id="z", type="debug.log"),)))
    assert again.version == 2
    assert await store.workflow_exists("w")
    assert [v.version for v in await store.list_versions("w")] == [1, 2]


async def test_concurrent_saves_get_distinct_versions(store: SqlStore) -> None:
    import asyncio

    saved = await asyncio.gather(
        *(store.save_workflow(simple_workflow("w", description=str(i))) for i in range(20))
    )
    assert sorted(w.version for w in saved) == list(range(1, 21))
    for workflow in saved:
        assert await store.get_workflow("w", version=workflow.version) == workflow


async def test_an_execution_needs_an_existing_version(store: SqlStore) -> None:
    await store.save_workflow(simple_workflow("w"))
    with pytest.raises(ConflictError):
        await store.create_execution(Execution(id="x", workflow_id="w", workflow_version=9))
    with pytest.raises(ConflictError):
        await store.create_execution(Execution(id="y", workflow_id="other", workflow_version=1))
    assert await store.get_execution("x") is None
