"""The group-commit writer: many saves, few transactions, and a bad write fails alone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.engine.ports import Checkpoint
from runnel.store import ConflictError, ExecutionNotFound, SqlStore, StoreClosed

from .conftest import NewExecution
from .helpers import node_checkpoint, running, simple_workflow


class WriterGate:
    """Holds the writer thread inside a job, so that what is submitted meanwhile queues up
    and goes into the next batch together. An inline writer (SQLite) needs no gate: what is
    submitted during one turn of the loop is one batch anyway, so the gate does nothing."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._entered = threading.Event()
        self._release = threading.Event()
        self._job: asyncio.Future[Any] | None = None

    @property
    def commits(self) -> int:
        """Commits the gate itself adds."""
        return 0 if self._store._writer.inline else 1

    async def __aenter__(self) -> WriterGate:
        if self._store._writer.inline:
            return self

        def hold(_cursor: DBAPICursor) -> None:
            self._entered.set()
            self._release.wait(timeout=30)

        # The store's private writer: tests need the batch boundary, callers never do.
        self._job = self._store._writer.call(hold)
        await asyncio.to_thread(self._entered.wait, 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._job is None:
            return
        self._release.set()
        await self._job


async def test_concurrent_saves_share_transactions(
    store: SqlStore, new_execution: NewExecution
) -> None:
    executions = [(await new_execution()).id for _ in range(20)]
    before = store.stats
    saves = [
        store.save(node_checkpoint(execution_id, f"n{seq}", seq, execution=running()))
        for execution_id in executions
        for seq in range(1, 11)
    ]
    assert len(saves) == 200
    await asyncio.gather(*saves)

    after = store.stats
    commits = after.commits - before.commits
    assert after.jobs - before.jobs == 200
    assert commits < 200, "group commit should put many saves in one transaction"
    for execution_id in executions:
        assert len(await store.node_runs(execution_id)) == 10
        assert [e.seq for e in await store.events(execution_id)] == list(range(1, 11))


async def test_saves_queued_together_commit_once(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution_ids = [(await new_execution()).id for _ in range(200)]
    async with WriterGate(store) as gate:
        before = store.stats.commits
        saves = asyncio.gather(*(store.save(node_checkpoint(x, "a", 1)) for x in execution_ids))
        await asyncio.sleep(0.05)  # let every save reach the queue
    await saves
    # The gate's own job commits (if it has one), then all 200 saves in one transaction.
    assert store.stats.commits - before == gate.commits + 1
    for execution_id in execution_ids:
        assert len(await store.events(execution_id)) == 1


async def test_a_bad_save_fails_alone(store: SqlStore, new_execution: NewExecution) -> None:
    execution_ids = [(await new_execution()).id for _ in range(10)]
    await store.save(node_checkpoint(execution_ids[3], "a", 1))
    before = store.stats

    async with WriterGate(store):
        good = [store.save(node_checkpoint(x, "b", 2)) for x in execution_ids]
        duplicate = store.save(node_checkpoint(execution_ids[3], "c", 1))  # seq 1 again
        unknown = store.save(node_checkpoint("ghost", "a", 1))
        results = asyncio.gather(*good, duplicate, unknown, return_exceptions=True)
        await asyncio.sleep(0.05)
    outcomes = await results

    assert outcomes[:10] == [None] * 10
    assert isinstance(outcomes[10], ConflictError)
    assert isinstance(outcomes[11], ExecutionNotFound)
    after = store.stats
    assert after.split_batches - before.split_batches == 1
    assert after.failed_jobs - before.failed_jobs == 2
    for execution_id in execution_ids:
        events = await store.events(execution_id)
        assert events[-1].seq == 2
    assert {run.node_id for run in await store.node_runs(execution_ids[3])} == {"a", "b"}


async def test_the_writer_goes_on_after_a_failure(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution = await new_execution()
    with pytest.raises(ExecutionNotFound):
        await store.save(Checkpoint("ghost", "wf", execution=running()))
    await store.save(node_checkpoint(execution.id, "a", 1))
    assert len(await store.events(execution.id)) == 1


async def test_close_writes_what_is_queued_then_refuses(database_url: str) -> None:
    store = SqlStore.open(database_url)
    try:
        await store.save_workflow(simple_workflow("w"))
        pending = asyncio.ensure_future(store.delete_workflow("w"))
        await asyncio.sleep(0)  # submitted
    finally:
        await store.close()
    assert await pending
    await store.close()  # idempotent
    with pytest.raises(StoreClosed):
        await store.delete_workflow("w")

    reopened = SqlStore.open(database_url)
    try:
        assert not await reopened.workflow_exists("w")
    finally:
        await reopened.close()
