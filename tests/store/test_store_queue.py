"""The embedded queue: oldest first, and never one execution to two claimers."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from runnel.model import ExecutionStatus
from runnel.store import SqlStore

from .conftest import NewExecution


async def test_claim_takes_the_oldest_queued(store: SqlStore, new_execution: NewExecution) -> None:
    await new_execution("not-queued")  # created but never enqueued
    for name in ("first", "second"):
        await new_execution(name, enqueue=True)

    assert await store.claim("w1", lease_seconds=30) == "first"
    assert await store.claim("w1", lease_seconds=30) == "second"
    assert await store.claim("w1", lease_seconds=30) is None
    claimed = await store.get_execution("first")
    assert claimed is not None
    assert claimed.status is ExecutionStatus.RUNNING


async def test_enqueue_only_what_may_run(store: SqlStore, new_execution: NewExecution) -> None:
    await new_execution("queued")
    await new_execution("waiting", status=ExecutionStatus.WAITING)
    await new_execution("done", status=ExecutionStatus.SUCCEEDED)

    assert await store.enqueue("queued")
    assert await store.enqueue("waiting")
    assert not await store.enqueue("done")
    assert not await store.enqueue("missing")

    assert await store.claim("w", 30) == "queued"
    assert not await store.enqueue("queued")  # running now: its worker holds it
    assert await store.claim("w", 30) == "waiting"
    assert await store.claim("w", 30) is None


async def test_no_execution_is_claimed_twice(
    store: SqlStore, new_execution: NewExecution, database_url: str
) -> None:
    queued = {(await new_execution(f"x{i:03}", enqueue=True)).id for i in range(40)}
    async with AsyncExitStack() as stack:
        # Several stores on one database stand for several processes.
        stores = [store]
        for _ in range(2):
            other = SqlStore.open(database_url, migrate=False)
            stack.push_async_callback(other.close)
            stores.append(other)

        async def worker(claimer: SqlStore, name: str) -> list[str]:
            taken = []
            while (execution_id := await claimer.claim(name, 30)) is not None:
                taken.append(execution_id)
            return taken

        results = await asyncio.gather(
            *(worker(stores[i % len(stores)], f"worker-{i}") for i in range(12)),
            *(stores[i % len(stores)].claim(f"burst-{i}", 30) for i in range(20)),
        )

    claimed = [
        x for result in results for x in (result if isinstance(result, list) else [result]) if x
    ]
    assert len(claimed) == len(set(claimed)), "an execution was claimed twice"
    assert set(claimed) == queued


async def test_an_enqueue_wakes_a_waiting_worker(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("x")

    async def idle_worker() -> str | None:
        if (claimed := await store.claim("w", 30)) is not None:
            return claimed
        async with asyncio.timeout(5):
            await store.wait_for_work()
        return await store.claim("w", 30)

    worker = asyncio.create_task(idle_worker())
    await asyncio.sleep(0.05)
    assert not worker.done()
    assert await store.enqueue("x")
    assert await worker == "x"
