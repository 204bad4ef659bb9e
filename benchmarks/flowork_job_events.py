"""Latency of Core Engine job events: a node finished -> its ``NODE_EXECUTION_METRIC`` left
the ``JobService`` (``emit`` called), on the embedded SQLite platform.

Runs Flowork jobs (a chain of ``static -> popup -> popup ...``) one at a time and then
``--concurrent`` at once, and compares each end metric's emit time with the stored
``node.finished`` event's timestamp (the executor's clock when it emitted the event).
Usage: ``python benchmarks/flowork_job_events.py [--nodes 10] [--jobs 50] [--concurrent 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account

from runnel.model.events import EventType
from runnel.platform import Platform, PlatformConfig
from runnel.services.core_engine.authority import StaticAuthority
from runnel.services.core_engine.jobs import JobDeps, JobService
from runnel.services.core_engine.types import EngineUser, Outgoing


def chain(length: int) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {"id": "n0", "module_id": "static_data_provider_module", "config_values": {"data": 1}}
    ]
    nodes += [{"id": f"n{i}", "module_id": "debug_popup_module"} for i in range(1, length)]
    connections = [
        {"id": f"c{i}", "source": f"n{i - 1}", "target": f"n{i}", "source_port_name": "output"}
        for i in range(1, length)
    ]
    return {"nodes": nodes, "connections": connections}


def summary(label: str, samples: list[float]) -> str:
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return (
        f"{label:<14} n={len(samples):<6} median {statistics.median(samples) * 1e3:7.3f} ms"
        f"  p95 {p95 * 1e3:7.3f} ms  max {samples[-1] * 1e3:7.3f} ms"
    )


async def main(length: int, jobs: int, concurrent: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        platform = await Platform.open(PlatformConfig(data_dir=Path(tmp)))
        await platform.start()
        address = Account.create().address.lower()
        emitted: dict[tuple[str, str], float] = {}
        ended: dict[str, asyncio.Event] = {}

        def emit(outgoing: Outgoing) -> None:
            message = outgoing.message
            now = time.time()
            if message["type"] == "NODE_EXECUTION_METRIC" and message["status"] != "RUNNING":
                emitted[(message["workflow_context_id"], message["node_id"])] = now
            elif (
                message["type"] == "workflow_status_update"
                and message["status_data"]["end_time"] is not None
            ):
                ended.setdefault(message["job_id"], asyncio.Event()).set()

        async def no_settings(_address: str) -> Mapping[str, Any]:
            return {}

        service = JobService(
            JobDeps(
                workflows=platform.workflows,
                executions=platform.executions,
                bus=platform.bus,
                presets=platform.flowork.presets,
                variables=platform.flowork.variables,
                settings=no_settings,
                engine_id="bench",
                authority=StaticAuthority([address], owner=address),
            ),
            emit,
        )
        await service.start()
        user = EngineUser(address)
        data = chain(length)

        async def one(job_id: str) -> None:
            done = ended.setdefault(job_id, asyncio.Event())
            await service.handle(
                user, {"type": "execute_workflow", "job_id": job_id, "workflow_data": data}
            )
            await done.wait()

        async def latencies(job_ids: list[str]) -> list[float]:
            samples = []
            for job_id in job_ids:
                for event in await platform.store.events(job_id):
                    if event.type is EventType.NODE_FINISHED and event.node_id is not None:
                        samples.append(emitted[(job_id, event.node_id)] - event.timestamp)
            return samples

        try:
            await one("warmup")
            sequential = [f"s{i}" for i in range(jobs)]
            for job_id in sequential:
                await one(job_id)
            print(summary("one at a time", await latencies(sequential)))
            parallel = [f"p{i}" for i in range(concurrent)]
            await asyncio.gather(*(one(job_id) for job_id in parallel))
            print(summary(f"{concurrent} at once", await latencies(parallel)))
        finally:
            await service.stop()
            await platform.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.nodes, args.jobs, args.concurrent))
