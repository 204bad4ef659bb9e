"""Many rows per statement: claiming many executions at once, and a group commit's rows of
one key (PostgreSQL writes them as one statement over column arrays) applied in order."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from runnel.engine.ports import Checkpoint, ExecutionUpdate
from runnel.model import ApprovalDecision, ExecutionStatus, NodeRun, NodeStatus
from runnel.store import ExecutionNotFound, SqlStore

from .conftest import NewExecution
from .helpers import event, node_checkpoint, running
from .test_store_group_commit import WriterGate


async def test_claim_many_takes_the_oldest_and_returns_them_whole(
    store: SqlStore, new_execution: NewExecution
) -> None:
    await new_execution("not-queued")
    for name in ("a", "b", "c"):
        await new_execution(name, enqueue=True, inputs={"name": name})

    claimed = await store.claim_many("w1", lease_seconds=30, limit=2)
    assert [execution.id for execution in claimed] == ["a", "b"]
    assert all(execution.status is ExecutionStatus.RUNNING for execution in claimed)
    assert claimed[0].inputs == {"name": "a"}
    # As stored: the claim's answer is what a read would give.
    assert claimed[1] == await store.get_execution("b")

    assert [x.id for x in await store.claim_many("w1", 30, limit=10)] == ["c"]
    assert await store.claim_many("w1", 30, limit=10) == []
    assert await store.claim_many("w1", 30, limit=0) == []
    # Each is held under the claimer's lease.
    assert await store.renew_leases("w1", 30) == {"a", "b", "c"}


async def test_claim_many_never_hands_one_execution_to_two_claimers(
    store: SqlStore, new_execution: NewExecution, database_url: str
) -> None:
    queued = {(await new_execution(f"x{i:03}", enqueue=True)).id for i in range(60)}
    async with AsyncExitStack() as stack:
        stores = [store]
        for _ in range(2):
            other = SqlStore.open(database_url, migrate=False)
            stack.push_async_callback(other.close)
            stores.append(other)

        async def worker(claimer: SqlStore, name: str) -> list[str]:
            taken: list[str] = []
            while claimed := await claimer.claim_many(name, 30, limit=7):
                taken.extend(execution.id for execution in claimed)
            return taken

        results = await asyncio.gather(
            *(worker(stores[i % len(stores)], f"worker-{i}") for i in range(6))
        )
    claimed = [execution_id for result in results for execution_id in result]
    assert len(claimed) == len(set(claimed)), "an execution was claimed twice"
    assert set(claimed) == queued


def _run(execution_id: str, status: NodeStatus, **fields: object) -> NodeRun:
    return NodeRun(execution_id=execution_id, node_id="a", status=status, attempt=1, **fields)  # type: ignore[arg-type]


async def test_rows_of_one_key_in_one_group_commit_apply_in_order(
    store: SqlStore, new_execution: NewExecution
) -> None:
    execution = await new_execution()
    other = await new_execution()
    x = execution.id
    # An approval decided on a waiting node: later checkpoints of the node never erase it.
    await store.save(Checkpoint(x, "wf", node_runs=(_run(x, NodeStatus.WAITING),)))
    decision = ApprovalDecision(approved=True, by="ann", at=5.0)
    assert await store.record_decision(x, "a", decision)

    before = store.stats
    async with WriterGate(store):
        saves = asyncio.gather(
            store.save(
                Checkpoint(
                    x,
                    "wf",
                    node_runs=(_run(x, NodeStatus.RUNNING, started_at=10.0),),
                    events=(event(x, 1),),
                    execution=ExecutionUpdate(status=ExecutionStatus.RUNNING, started_at=10),
                )
            ),
            store.save(node_checkpoint(other.id, "a", 1, execution=running(3.0))),
            store.save(
                Checkpoint(
                    x,
                    "wf",
                    node_runs=(
                        _run(
                            x,
                            NodeStatus.SUCCEEDED,
                            outputs={"value": 1},
                            started_at=10.0,
                            finished_at=20.0,
                        ),
                    ),
                    events=(event(x, 2), event(x, 3)),
                    execution=ExecutionUpdate(
                        status=ExecutionStatus.SUCCEEDED,
                        finished_at=20.0,
                        outputs={"a": {"value": 1}},
                    ),
                )
            ),
        )
        await asyncio.sleep(0.05)
    await saves
    # One transaction for all three, not a failed batch retried one by one.
    assert store.stats.split_batches == before.split_batches

    stored = await store.get_execution(x)
    assert stored is not None
    # The later update wins; what it leaves out (NULL) keeps the earlier value.
    assert (stored.status, stored.started_at, stored.finished_at, stored.outputs) == (
        ExecutionStatus.SUCCEEDED,
        10.0,
        20.0,
        {"a": {"value": 1}},
    )
    (run,) = await store.node_runs(x)
    assert (run.status, run.outputs, run.finished_at) == (NodeStatus.SUCCEEDED, {"value": 1}, 20.0)
    assert run.decision == decision
    assert (await store.resume_state(x)).next_seq == 4
    untouched = await store.get_execution(other.id)
    assert untouched is not None and untouched.started_at == 3.0


async def test_an_update_of_an_unknown_execution_fails_alone(
    store: SqlStore, new_execution: NewExecution
) -> None:
    executions = [(await new_execution()).id for _ in range(5)]
    async with WriterGate(store):
        updates = [
            store.save(Checkpoint(x, "wf", execution=running(float(i))))
            for i, x in enumerate(executions, 1)
        ]
        ghost = store.save(Checkpoint("ghost", "wf", execution=running()))
        results = asyncio.gather(*updates, ghost, return_exceptions=True)
        await asyncio.sleep(0.05)
    outcomes = await results
    assert outcomes[:5] == [None] * 5
    assert isinstance(outcomes[5], ExecutionNotFound)
    for i, x in enumerate(executions, 1):
        stored = await store.get_execution(x)
        assert stored is not None and stored.started_at == float(i)


async def test_the_next_seq_comes_from_the_events(
    store: SqlStore, new_execution: NewExecution
) -> None:
    """A checkpoint that leaves the status alone does not update the execution row; a
    resume still continues after the last stored event."""
    x = (await new_execution()).id
    await store.save(Checkpoint(x, "wf", events=(event(x, 1),), execution=running()))
    await store.save(node_checkpoint(x, "a", 2))
    await store.save(Checkpoint(x, "wf", events=(event(x, 3), event(x, 4))))
    assert (await store.resume_state(x)).next_seq == 5
