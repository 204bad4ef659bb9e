"""Per-node overhead of the executor on a linear chain of ``transform.set`` nodes.

Runs one execution at a time (like Windmill's 40-task benchmark) against the in-memory
ports and against the embedded SQLite store, and prints median and p99 per execution and
per node. Usage: ``python benchmarks/engine_chain.py [--nodes 40] [--runs 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from runnel.engine.executor import Executor
from runnel.engine.registry import default_registry
from runnel.engine.run import RunRequest
from runnel.model.execution import Execution, ExecutionStatus
from runnel.model.workflow import Edge, Node, Workflow
from runnel.store import SqlStore
from runnel.testing.store import MemoryCheckpointStore, RecordingEventSink


def chain(length: int) -> Workflow:
    nodes = tuple(
        Node(f"n{i}", "transform.set", config={"values": {"n": "{{ $input.value.n + 1 }}"}})
        for i in range(length)
    )
    edges = tuple(Edge(f"e{i}", f"n{i}", f"n{i + 1}") for i in range(length - 1))
    return Workflow(id="chain", name="chain", nodes=nodes, edges=edges)


class NullSink:
    def publish(self, event: object) -> None:
        pass


def summary(label: str, samples: list[float], length: int) -> str:
    samples.sort()
    median = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return (
        f"{label:<22} median {median * 1e3:7.3f} ms  p99 {p99 * 1e3:7.3f} ms  "
        f"per node {median / length * 1e6:7.1f} us"
    )


async def in_memory(length: int, runs: int) -> list[float]:
    executor = Executor(default_registry(), MemoryCheckpointStore(), RecordingEventSink())
    workflow = chain(length)
    samples = []
    for i in range(runs):
        began = time.perf_counter()
        result = await executor.run(RunRequest(f"x{i}", workflow, {"value": {"n": 0}}))
        samples.append(time.perf_counter() - began)
        assert result.status is ExecutionStatus.SUCCEEDED
    return samples


async def on_sqlite(length: int, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        store = await asyncio.to_thread(SqlStore.open, None, data_dir=Path(folder))
        try:
            workflow = await store.save_workflow(chain(length))
            executor = Executor(default_registry(), store, NullSink())
            samples = []
            for _ in range(runs):
                execution_id = str(uuid.uuid4())
                began = time.perf_counter()
                await store.create_execution(
                    Execution(execution_id, workflow.id, workflow.version, inputs={})
                )
                result = await executor.run(RunRequest(execution_id, workflow, {"value": {"n": 0}}))
                samples.append(time.perf_counter() - began)
                assert result.status is ExecutionStatus.SUCCEEDED
            return samples
        finally:
            await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    await in_memory(args.nodes, 20)  # warm caches
    print(summary("in-memory ports", await in_memory(args.nodes, args.runs), args.nodes))
    print(summary("SQLite (group commit)", await on_sqlite(args.nodes, args.runs), args.nodes))


if __name__ == "__main__":
    asyncio.run(main())
