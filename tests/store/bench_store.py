"""Quick throughput check of the store's writer (not a test; pytest does not collect it).

    .venv/bin/python tests/store/bench_store.py [DATABASE_URL]

Prints commits/s for checkpoints saved one at a time, and checkpoints/s and rows/s when
many executions save concurrently (group commit). Default: a SQLite file in a temp dir.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from runnel.engine.ports import Checkpoint, ExecutionUpdate
from runnel.model import (
    Event,
    EventType,
    Execution,
    ExecutionStatus,
    Node,
    NodeRun,
    NodeStatus,
    Workflow,
)
from runnel.store import SqlStore


def checkpoint(execution_id: str, seq: int) -> Checkpoint:
    """A typical node checkpoint: one node run and its event (the execution's status is
    left alone, as for every node but the first and the last)."""
    now = time.time()
    outputs = {"value": {"status": 200, "body": "x" * 200, "n": seq}}
    run = NodeRun(
        execution_id,
        f"n{seq}",
        NodeStatus.SUCCEEDED,
        attempt=1,
        inputs={"value": seq},
        outputs=outputs,
        started_at=now,
        finished_at=now,
    )
    finished = Event(
        execution_id,
        seq,
        EventType.NODE_FINISHED,
        now,
        node_id=run.node_id,
        data={"outputs": outputs, "duration_ms": 0.1},
    )
    return Checkpoint(
        execution_id,
        "bench",
        node_runs=(run,),
        events=(finished,),
        execution=ExecutionUpdate(status=ExecutionStatus.RUNNING) if seq == 1 else None,
    )


async def main(url: str) -> None:
    store = SqlStore.open(url)
    try:
        await store.save_workflow(Workflow(id="bench", nodes=(Node(id="n", type="debug.log"),)))

        async def new_execution() -> str:
            execution = Execution(id=uuid.uuid4().hex, workflow_id="bench", workflow_version=1)
            return (await store.create_execution(execution)).id

        # 1. One save at a time: every checkpoint is its own transaction.
        execution_id = await new_execution()
        count = 3000
        before = store.stats.commits
        started = time.perf_counter()
        for seq in range(1, count + 1):
            await store.save(checkpoint(execution_id, seq))
        elapsed = time.perf_counter() - started
        commits = store.stats.commits - before
        print(f"sequential: {count / elapsed:,.0f} saves/s, {commits / elapsed:,.0f} commits/s")

        # 2. Many executions saving at once: group commit.
        for concurrency in (10, 100, 500):
            per_execution = max(20, 20_000 // concurrency)
            ids = [await new_execution() for _ in range(concurrency)]

            async def run(execution_id: str, per_execution: int = per_execution) -> None:
                for seq in range(1, per_execution + 1):
                    await store.save(checkpoint(execution_id, seq))

            before = store.stats.commits
            started = time.perf_counter()
            await asyncio.gather(*(run(x) for x in ids))
            elapsed = time.perf_counter() - started
            saves = concurrency * per_execution
            commits = store.stats.commits - before
            # node run + event + the execution's next seq, per checkpoint
            rows = saves * 3
            print(
                f"concurrency {concurrency:>3}: {saves / elapsed:,.0f} checkpoints/s, "
                f"{rows / elapsed:,.0f} rows/s, {commits} commits "
                f"({saves / max(commits, 1):.0f} checkpoints per commit)"
            )
    finally:
        await store.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(main(f"sqlite:///{Path(directory) / 'bench.db'}"))
