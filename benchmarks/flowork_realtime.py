"""Flowork realtime against a real ``runnel serve`` (its embedded engine, SQLite, one
uvicorn process), measured from outside the process:

1. **Signed messages per second** one engine handles on its Core Engine socket, with 1 and
   several concurrent connections (``--clients 1,4``). Each connection sends
   ``request_settings`` envelopes signed *before* the clock starts (so the client's signing
   speed is not measured) and waits for each answer before sending the next (a round
   trip: EIP-191 recovery, time window, one replay seen-set insert, the engine's
   authorization check, a settings read, the answer). Reports round trips/s (all
   connections together) and the per-round-trip latency.
2. **Event latency**: a node finishing -> a client receiving its ``NODE_EXECUTION_METRIC``
   end event, on the gateway's ``/gui-socket`` (python-socketio, relayed in-process from the
   embedded engine) and, for comparison, on the Core Engine socket directly. Jobs are
   chains of ``static -> popup -> ...``; the latency is the client's ``time.time()`` when
   the event arrives minus the event's ``timestamp`` (ISO 8601 with milliseconds: the
   executor's clock when it emitted ``node.finished``; same machine, same clock). The
   timestamp is truncated to the millisecond, so each sample may read up to 1 ms high.

    .venv/bin/python benchmarks/flowork_realtime.py [--count 1500] [--clients 1,4]
        [--nodes 20] [--jobs 20] [--concurrent 10] [--json FILE]

Run from anywhere; prints a table (and writes JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import socketio  # noqa: E402

from e2e.harness import RunningServer, start_server  # noqa: E402
from runnel.client.flowork import CoreEngineClient, FloworkSigner  # noqa: E402

SETTINGS = {"type": "request_settings"}
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass
class Figures:
    what: str
    samples: int
    per_second: float | None
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def figures(what: str, samples: list[float], per_second: float | None = None) -> Figures:
    return Figures(
        what,
        len(samples),
        per_second,
        round(statistics.median(samples) * 1e3, 3),
        round(percentile(samples, 0.99) * 1e3, 3),
        round(max(samples) * 1e3, 3),
    )


# -- 1. signed messages per second -------------------------------------------------------------


async def throughput(
    ws_url: str, engine_id: str, signer: FloworkSigner, clients: int, count: int
) -> Figures:
    """``clients`` connections, ``count`` round trips each, all at once."""
    frames = [[json.dumps(signer.envelope(SETTINGS)) for _ in range(count)] for _ in range(clients)]
    connections = [CoreEngineClient.connect(ws_url, engine_id, signer) for _ in range(clients)]
    for connection in connections:
        await connection.open()
        await connection.request(SETTINGS, "settings_response")  # warm up
    rtts: list[float] = []
    start = asyncio.Event()

    async def drive(connection: CoreEngineClient, mine: list[str]) -> None:
        await start.wait()
        for frame in mine:
            sent = time.perf_counter()
            await connection.send_raw(frame)
            answer = await connection.next_message(("settings_response", "error"), timeout=30)
            rtts.append(time.perf_counter() - sent)
            if answer["type"] == "error":
                raise RuntimeError(f"refused: {answer['error']}")

    try:
        tasks = [asyncio.create_task(drive(c, f)) for c, f in zip(connections, frames, strict=True)]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    finally:
        for connection in connections:
            await connection.close()
    total = clients * count
    return figures(f"round trips, {clients} connection(s)", rtts, round(total / elapsed, 1))


# -- 2. event latency --------------------------------------------------------------------------


def chain(length: int) -> dict[str, Any]:
    """static -> popup -> popup ... (``length`` nodes in all)."""
    nodes: list[dict[str, Any]] = [
        {"id": "n0", "name": "N0", "x": 0, "y": 0, "module_id": "static_data_provider_module"}
    ]
    nodes[0]["config_values"] = {"data": {"n": 1}}
    nodes += [
        {"id": f"n{i}", "name": f"N{i}", "x": 0, "y": 0, "module_id": "debug_popup_module"}
        for i in range(1, length)
    ]
    connections = [
        {"id": f"c{i}", "source": f"n{i - 1}", "target": f"n{i}", "source_port_name": "output"}
        for i in range(1, length)
    ]
    return {"nodes": nodes, "connections": connections}


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Listener:
    """Node-end latencies and job ends, as messages arrive (``on_message(msg, now)``)."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Future[str]] = {}

    def on_message(self, message: dict[str, Any], now: float) -> None:
        kind = message.get("type")
        if kind == "NODE_EXECUTION_METRIC" and message.get("status") != "RUNNING":
            job_id = str(message.get("workflow_context_id"))
            self.latencies.setdefault(job_id, []).append(now - iso_seconds(message["timestamp"]))
        elif kind == "workflow_status_update" and message["status_data"]["status"] in ENDED:
            self.ended.setdefault(message["job_id"], asyncio.Event()).set()

    def samples(self, job_ids: list[str]) -> list[float]:
        return [s for job_id in job_ids for s in self.latencies.get(job_id, [])]


async def run_jobs(
    send: Callable[[dict[str, Any]], Any],
    listener: Listener,
    data: dict[str, Any],
    job_ids: list[str],
    at_once: bool,
) -> None:
    async def one(job_id: str) -> None:
        done = listener.ended.setdefault(job_id, asyncio.Event())
        await send({"type": "execute_workflow", "job_id": job_id, "workflow_data": data})
        await asyncio.wait_for(done.wait(), 120)

    if at_once:
        await asyncio.gather(*(one(job_id) for job_id in job_ids))
    else:
        for job_id in job_ids:
            await one(job_id)


async def gui_latency(
    gateway_url: str,
    engine_id: str,
    signer: FloworkSigner,
    data: dict[str, Any],
    jobs: int,
    concurrent: int,
) -> list[Figures]:
    listener = Listener()
    sio = socketio.AsyncClient(reconnection=False)

    async def on_any(event: str, *args: Any) -> None:
        now = time.time()
        payload = args[0] if args else None
        if isinstance(payload, dict):
            listener.on_message({**payload, "type": event}, now)

    sio.on("*", on_any, namespace="/gui-socket")
    await sio.connect(
        gateway_url,
        namespaces=["/gui-socket"],
        auth=signer.socket_auth(),
        socketio_path="socket.io",
        transports=["websocket"],
    )

    async def send(payload: dict[str, Any]) -> None:
        body = {**payload, "target_engine_id": engine_id}
        await sio.emit(payload["type"], {"v": 2, "payload": body}, namespace="/gui-socket")

    try:
        return await measure("gui-socket", send, listener, data, jobs, concurrent)
    finally:
        await sio.disconnect()


async def core_latency(
    ws_url: str,
    engine_id: str,
    signer: FloworkSigner,
    data: dict[str, Any],
    jobs: int,
    concurrent: int,
) -> list[Figures]:
    listener = Listener()
    async with CoreEngineClient.connect(ws_url, engine_id, signer) as client:

        async def read() -> None:
            async for message in client.messages():
                listener.on_message(message, time.time())

        reader = asyncio.create_task(read())
        try:
            return await measure("core socket", client.send, listener, data, jobs, concurrent)
        finally:
            reader.cancel()


async def measure(
    label: str,
    send: Callable[[dict[str, Any]], Any],
    listener: Listener,
    data: dict[str, Any],
    jobs: int,
    concurrent: int,
) -> list[Figures]:
    tag = uuid.uuid4().hex[:6]
    await run_jobs(send, listener, data, [f"warm-{tag}"], at_once=False)
    one_by_one = [f"s-{tag}-{i}" for i in range(jobs)]
    await run_jobs(send, listener, data, one_by_one, at_once=False)
    together = [f"p-{tag}-{i}" for i in range(concurrent)]
    await run_jobs(send, listener, data, together, at_once=True)
    return [
        figures(f"node end -> {label}, jobs one at a time", listener.samples(one_by_one)),
        figures(f"node end -> {label}, {concurrent} jobs at once", listener.samples(together)),
    ]


# -- main ------------------------------------------------------------------------------------


def start(signer: FloworkSigner, data_dir: Path) -> tuple[RunningServer, str]:
    server = start_server(
        data_dir,
        env={
            "RUNNEL_OWNER_ADDRESS": signer.address,
            "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
            "RUNNEL_LOG": "warning",
        },
    )
    engines = httpx.get(f"{server.base_url}/api/v1/user/engines", headers=signer.api_headers())
    engine_id = next(e["id"] for e in engines.json() if e.get("embedded"))
    return server, str(engine_id)


async def bench(
    args: argparse.Namespace, server: RunningServer, engine_id: str, signer: FloworkSigner
) -> list[Figures]:
    results: list[Figures] = []
    ws_url = server.ws_url + "/"
    for clients in args.clients:
        results.append(await throughput(ws_url, engine_id, signer, clients, args.count))
        print(results[-1], flush=True)
    data = chain(args.nodes)
    for result in await gui_latency(
        server.base_url, engine_id, signer, data, args.jobs, args.concurrent
    ):
        results.append(result)
        print(result, flush=True)
    for result in await core_latency(ws_url, engine_id, signer, data, args.jobs, args.concurrent):
        results.append(result)
        print(result, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="round trips per connection")
    parser.add_argument("--clients", default="1,4", help="connection counts, comma-separated")
    parser.add_argument("--nodes", type=int, default=20, help="nodes per job")
    parser.add_argument("--jobs", type=int, default=20, help="jobs run one at a time")
    parser.add_argument("--concurrent", type=int, default=10, help="jobs run at once")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    signer = FloworkSigner.generate()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        server, engine_id = start(signer, data_dir)
        try:
            results = asyncio.run(bench(args, server, engine_id, signer))
        finally:
            server.stop()
    print()
    print(f"{'measure':<52} {'n':>6} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in results:
        rate = f"{r.per_second:,.0f}" if r.per_second is not None else "-"
        print(
            f"{r.what:<52} {r.samples:>6} {rate:>9}"
            f" {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
