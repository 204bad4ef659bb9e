"""Every runnel benchmark in one command, with Node-RED side by side; see benchmarks/README.md.

    .venv/bin/python benchmarks/run.py [--smoke] [--only W1,L40] [--duration 20]
        [--no-nodered | --nodered] [--loader auto|wrk|python] [--out FILE]

Starts a real ``runnel serve`` (fresh data dir, embedded SQLite, ``--no-auth`` on loopback)
per workload, creates the workflows through the API and loads it with ``wrk`` (50
connections, loopback only); Node-RED runs the same flows right after each runnel run.
Prints a table and writes JSON (default ``benchmarks/results/latest.json``). Exits 1 when a
workload errored (wrong answer, non-2xx), never for a missed target. Run from anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
import load  # noqa: E402
import nodered  # noqa: E402

from e2e.harness import RunningServer, free_port, start_server  # noqa: E402

MAX_SECONDS = 20.0
SMOKE_SECONDS = 1.0
CONNECTIONS = load.CONNECTIONS
BODY = b'{"a":1}'
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_ENV = {"RUNNEL_RATE_LIMIT_PER_SECOND": "0", "RUNNEL_LOG": "warning"}

# --------------------------------------------------------------------------------------------
# Workflows (Flow Engine format)


def _node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "node_type": node_type, "config": config}


def _setter(node_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """``transform.set``: a copy of the input object with ``values`` set (templates allowed)."""
    return _node(node_id, "transform.set", values={"type": "Json", "value": values})


def _link(source: str, target: str, target_port: str = "value") -> dict[str, str]:
    return {"from_node": source, "from_port": "value", "to_node": target, "to_port": target_port}


def _workflow(
    workflow_id: str,
    nodes: list[dict[str, Any]],
    links: list[dict[str, str]],
    *,
    hook: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": workflow_id,
        "name": workflow_id,
        "description": "benchmarks/run.py",
        "nodes": nodes,
        "connections": links,
        "triggers": [],
    }
    if hook is not None:
        trigger = {"type": "Webhook", "path": hook}
        document["triggers"] = [{"id": "hook", "trigger_type": trigger, "enabled": True}]
    if settings:
        document["settings"] = settings
    return document


def webhook_workflow(history: bool) -> dict[str, Any]:
    """W1: ``{"a": 1}`` -> ``transform.set`` adds ``seen: true``."""
    settings = None if history else {"save_history": "none"}
    nodes = [_setter("set", {"seen": True})]
    return _workflow("w1", nodes, [], hook="bench", settings=settings)


def chain_workflow(
    workflow_id: str, length: int, *, hook: str | None, history: bool = True
) -> dict[str, Any]:
    """W2/L40/EV: ``length`` chained ``transform.set``; the first sets ``n`` to 1, each next
    one adds 1 with an expression."""
    settings = None if history else {"save_history": "none"}
    nodes = [_setter("n0", {"n": 1})] + [
        _setter(f"n{i}", {"n": "{{ $input.value.n + 1 }}"}) for i in range(1, length)
    ]
    links = [_link(f"n{i}", f"n{i + 1}") for i in range(length - 1)]
    return _workflow(workflow_id, nodes, links, hook=hook, settings=settings)


def fanout_workflow(width: int) -> dict[str, Any]:
    """F100: a source, ``width`` parallel ``transform.set`` and a ``flow.merge`` (mode all)
    with one port per branch; ``max_parallel_nodes`` lets all branches run at once."""
    nodes = [_setter("src", {"src": True})]
    links = []
    for i in range(width):
        nodes.append(_setter(f"b{i}", {"b": i}))
        links.append(_link("src", f"b{i}"))
        links.append(_link(f"b{i}", "merge", f"p{i}"))
    nodes.append(_node("merge", "flow.merge", mode={"type": "String", "value": "all"}))
    settings = {"max_parallel_nodes": width}
    return _workflow("f100", nodes, links, hook="fanout", settings=settings)


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Row:
    id: str
    workload: str
    title: str
    unit: str  # of the primary figure: "req/s", "ms", "exec/s"
    target: str
    status: str = "ok"  # ok | error | skipped | not available
    notes: list[str] = field(default_factory=list)
    runnel: dict[str, Any] | None = None
    nodered: dict[str, Any] | None = None
    nodered_note: str | None = None
    ratio: float | None = None
    met: bool | None = None

    def fail(self, message: str) -> None:
        self.status = "error"
        self.notes.append(message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workload": self.workload,
            "title": self.title,
            "unit": self.unit,
            "status": self.status,
            "notes": self.notes,
            "runnel": self.runnel,
            "nodered": self.nodered,
            "nodered_note": self.nodered_note,
            "ratio_runnel_over_nodered": self.ratio,
            "target": self.target,
            "target_met": self.met,
        }


def say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------
# /proc figures


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its live descendants so far (Linux)."""
    total = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident memory) of ``pid``, in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


# --------------------------------------------------------------------------------------------
# Running the rows


@dataclass
class Context:
    smoke: bool
    seconds: float
    loader: str  # "wrk" or "python"
    wrk: str | None
    nodered: bool
    postgres_url: str
    postgres: bool
    scratch: Path

    def load(self, url: str, seconds: float | None = None) -> load.LoadResult:
        duration = self.seconds if seconds is None else seconds
        if self.loader == "wrk" and self.wrk is not None:
            return load.wrk_load(self.wrk, url, BODY, duration, CONNECTIONS)
        return load.python_load(url, BODY, duration, CONNECTIONS)


@contextlib.contextmanager
def runnel_server(ctx: Context, name: str) -> Iterator[RunningServer]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=ctx.scratch)) / "data"
    server = start_server(data_dir, env=SERVER_ENV, args=["--no-auth"])
    try:
        yield server
    finally:
        code = server.stop()
        if code != 0:
            say(f"  runnel serve exited with {code}:\n{server.log()[-2000:]}")


def _post(base_url: str, path: str, body: bytes) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _expect_json(expected: Any) -> Callable[[int, bytes], str | None]:
    def check(status: int, body: bytes) -> str | None:
        if not 200 <= status < 300:
            return f"HTTP {status}: {body[:200]!r}"
        try:
            got = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        return None if got == expected else f"answer {got!r}, expected {expected!r}"

    return check


def _expect_execution(nodes: int) -> Callable[[int, bytes], str | None]:
    def check(status: int, body: bytes) -> str | None:
        if not 200 <= status < 300:
            return f"HTTP {status}: {body[:200]!r}"
        got = json.loads(body)
        if got.get("status") != "succeeded" or got.get("completed_nodes") != nodes:
            return f"execution {got.get('status')} with {got.get('completed_nodes')} nodes"
        return None

    return check


def _expect_fanout(width: int) -> Callable[[int, bytes], str | None]:
    expected = {f"p{i}": {"a": 1, "b": i} for i in range(width)}
    return _expect_json(expected)


def _create(server: RunningServer, document: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        return client.post("/api/workflows", json=document)


def _stored_executions(server: RunningServer, workflow_id: str) -> int | None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        answer = client.get("/api/executions", params={"workflow_id": workflow_id, "limit": 1})
    if answer.status_code != 200:
        return None
    total = answer.json().get("total")
    return total if isinstance(total, int) else None


def _load_figures(result: load.LoadResult, cpu: float, pid: int) -> dict[str, Any]:
    figures = result.as_dict()
    figures["cpu_ms_per_request"] = (
        round(cpu * 1000 / result.requests, 4) if result.requests else None
    )
    figures["peak_rss_mb"] = peak_rss_mb(pid)
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "seconds"):
        figures[key] = round(figures[key], 3)
    return figures


def _check_load(row: Row, side: str, result: load.LoadResult) -> None:
    if result.requests == 0:
        row.fail(f"{side}: no request answered")
    if result.non_2xx:
        row.fail(f"{side}: {result.non_2xx} non-2xx answers")
    if result.socket_errors > max(0, result.requests // 100):
        row.fail(f"{side}: {result.socket_errors} socket errors")
    elif result.socket_errors:
        row.notes.append(f"{side}: {result.socket_errors} socket errors (< 1%)")


def _measure_load(ctx: Context, url: str, pid: int) -> tuple[load.LoadResult, float]:
    if not ctx.smoke:
        ctx.load(url, 2.0)  # warm-up
    before = cpu_seconds(pid)
    result = ctx.load(url)
    return result, cpu_seconds(pid) - before


def webhook_row(
    ctx: Context,
    row: Row,
    document: dict[str, Any],
    path: str,
    expected: Any,
    flow: list[dict[str, Any]],
) -> None:
    """W1/W2: answer checked once, then ``wrk`` on ``POST path``; then Node-RED the same."""
    with runnel_server(ctx, row.id) as server:
        created = _create(server, document)
        if created.status_code == 400 and "save_history" in created.text:
            row.status = "not available"
            row.notes.append(f"the server rejects settings.save_history: {created.text[:200]}")
            return
        if created.status_code != 200:
            row.fail(f"creating the workflow: HTTP {created.status_code} {created.text[:300]}")
            return
        problem = _expect_json(expected)(*_post(server.base_url, path, BODY))
        if problem is not None:
            row.fail(f"runnel: {problem}")
            return
        result, cpu = _measure_load(ctx, server.base_url + path, server.process.pid)
        row.runnel = _load_figures(result, cpu, server.process.pid)
        row.runnel["stored_executions"] = _stored_executions(server, document["id"])
        _check_load(row, "runnel", result)
    if not ctx.nodered:
        return
    with nodered.running(flow, free_port()) as red:
        problem = _expect_json(expected)(*_post(red.base_url, path, BODY))
        if problem is not None:
            row.fail(f"Node-RED: {problem}")
            return
        result, cpu = _measure_load(ctx, red.base_url + path, red.process.pid)
        row.nodered = _load_figures(result, cpu, red.process.pid)
        _check_load(row, "Node-RED", result)
    if row.runnel and row.nodered and row.nodered["rate"]:
        row.ratio = round(row.runnel["rate"] / row.nodered["rate"], 3)


def _sequential_figures(result: load.SequentialResult, cpu: float, pid: int) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "failed": result.failed,
        "p50_ms": round(result.p50_ms, 3),
        "p99_ms": round(result.p99_ms, 3),
        "mean_ms": round(result.mean_ms, 3),
        "max_ms": round(result.max_ms, 3),
        "cpu_ms_per_request": round(cpu * 1000 / result.requests, 4) if result.requests else None,
        "peak_rss_mb": peak_rss_mb(pid),
    }


def _sequential(
    ctx: Context,
    row: Row,
    side: str,
    url: str,
    body: bytes,
    pid: int,
    check: Callable[[int, bytes], str | None],
) -> dict[str, Any] | None:
    problem = check(*_post(*_split(url), body))
    if problem is not None:
        row.fail(f"{side}: {problem}")
        return None
    count = 100_000 if ctx.smoke else 300
    seconds = ctx.seconds
    before = cpu_seconds(pid)
    result = load.sequential(url, body, count=count, seconds=seconds, check=check, warmup=10)
    figures = _sequential_figures(result, cpu_seconds(pid) - before, pid)
    if result.failed:
        row.fail(f"{side}: {result.failed} wrong answers, e.g. {result.errors[0]}")
    if not result.requests:
        row.fail(f"{side}: no request answered")
    return figures


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{parts.scheme}://{parts.netloc}", path


def latency_row(
    ctx: Context,
    row: Row,
    document: dict[str, Any],
    check: Callable[[int, bytes], str | None],
    flow: list[dict[str, Any]] | None,
    flow_path: str,
    flow_check: Callable[[int, bytes], str | None],
) -> None:
    """L40/F100: sequential ``POST /api/workflows/{id}/execute`` on one connection; Node-RED
    the same graph behind ``http in`` (it has no execute API)."""
    with runnel_server(ctx, row.id) as server:
        created = _create(server, document)
        if created.status_code != 200:
            row.fail(f"creating the workflow: HTTP {created.status_code} {created.text[:300]}")
            return
        url = f"{server.base_url}/api/workflows/{document['id']}/execute"
        body = json.dumps({"inputs": {"a": 1}}).encode()
        row.runnel = _sequential(ctx, row, "runnel", url, body, server.process.pid, check)
    if not ctx.nodered or flow is None:
        return
    with nodered.running(flow, free_port()) as red:
        row.nodered = _sequential(
            ctx, row, "Node-RED", red.base_url + flow_path, BODY, red.process.pid, flow_check
        )
    if row.runnel and row.nodered and row.nodered["p50_ms"]:
        row.ratio = round(row.runnel["p50_ms"] / row.nodered["p50_ms"], 3)


async def _event_latencies(
    server: RunningServer, workflow_id: str, count: int, seconds: float
) -> tuple[list[float], int, list[str]]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    problems: list[str] = []
    url = f"{server.ws_url}/api/events?workflow_id={workflow_id}"
    async with connect(url, max_size=None) as socket:

        async def read() -> None:
            async for raw in socket:
                received = time.time()
                message = json.loads(raw)
                if message.get("type") == "NodeCompleted":
                    stamp = datetime.fromisoformat(message["timestamp"]).timestamp()
                    latencies.append(received - stamp)

        reader = asyncio.create_task(read())
        host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
        stream_reader, writer = await asyncio.open_connection(host, port)
        body = b'{"inputs": {"a": 1}}'
        request = (
            f"POST /api/workflows/{workflow_id}/execute HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        check = _expect_execution(5)
        executions = 0
        deadline = time.perf_counter() + seconds
        try:
            while executions < count and time.perf_counter() < deadline:
                writer.write(request)
                status, answer = await load.read_response(stream_reader)
                problem = check(status, answer)
                if problem is not None:
                    problems.append(problem)
                executions += 1
                await asyncio.sleep(0.002)  # let the socket's frames in before the next run
            await asyncio.sleep(0.2)
        finally:
            writer.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return latencies, executions, problems


def events_row(ctx: Context, row: Row) -> None:
    """EV: a 5-node chain run again and again; for each ``NodeCompleted`` on ``/api/events``
    the receive time minus the event's ``timestamp`` (set when the node finished)."""
    with runnel_server(ctx, row.id) as server:
        created = _create(server, chain_workflow("ev", 5, hook=None))
        if created.status_code != 200:
            row.fail(f"creating the workflow: HTTP {created.status_code} {created.text[:300]}")
            return
        count = 100_000 if ctx.smoke else 300
        latencies, executions, problems = asyncio.run(
            _event_latencies(server, "ev", count, ctx.seconds)
        )
    if problems:
        row.fail(f"{len(problems)} wrong execute answers, e.g. {problems[0]}")
    if len(latencies) < executions * 5:
        row.fail(f"{executions * 5} NodeCompleted events expected, {len(latencies)} received")
    if not latencies:
        row.fail("no event received")
        return
    latencies.sort()

    def q(fraction: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * fraction))] * 1000, 3)

    row.runnel = {
        "executions": executions,
        "events": len(latencies),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": round(latencies[-1] * 1000, 3),
    }
    row.notes.append(
        "event timestamps carry milliseconds (cut, not rounded): figures are upper bounds,"
        " high by less than 1 ms"
    )


# --------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_problem(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``, else why not."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL unreachable at {url}: {str(exc).strip().splitlines()[0]}"
    return None


@contextlib.contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"runnel_bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        parts = urlsplit(url)
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_row(ctx: Context, row: Row, workers: int) -> None:
    """PG-n: queue N executions of a 5-node workflow (``time.delay`` 0 ms, as in
    benchmarks/cluster.py) in a throwaway database, start ``workers`` ``runnel worker``
    processes at once, and count executions/s while all of them run: from the moment the
    last one is up to the last finish (from the first start when all finished earlier)."""
    from e2e.cluster import Cluster

    executions = 300 if ctx.smoke else 3000
    with (
        tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp,
        throwaway_database(ctx.postgres_url) as url,
    ):
        # A deployment's lease, heartbeat and poll interval (the e2e Cluster's are short).
        cluster = Cluster(
            Path(tmp),
            url,
            RUNNEL_LOG="warning",
            RUNNEL_LEASE_SECONDS="30",
            RUNNEL_HEARTBEAT_SECONDS="10",
            RUNNEL_WORKER_POLL_SECONDS="5",
        )
        try:
            api = cluster.api("api")
            delays = [_node(f"d{i}", "time.delay", delay_ms=0) for i in range(1, 6)]
            links = [_link(f"d{i}", f"d{i + 1}") for i in range(1, 5)]
            with api.client() as client:
                document = _workflow("pg5", delays, links)
                client.post("/api/workflows", json=document).raise_for_status()
            # Queue everything first, so that posting does not limit the rate measured.
            parts = urlsplit(api.base_url)
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
            headers = {**api.auth, "Content-Type": "application/json"}
            for _ in range(executions):
                connection.request("POST", "/api/workflows/pg5/execute?wait=false", b"{}", headers)
                response = connection.getresponse()
                response.read()
                if response.status not in (200, 202):
                    row.fail(f"queueing: HTTP {response.status}")
                    return
            connection.close()
            starters = [
                threading.Thread(target=cluster.worker, args=(f"w{i}", "--concurrency", "64"))
                for i in range(workers)
            ]
            for starter in starters:
                starter.start()
            for starter in starters:
                starter.join()
            all_up = time.time()
            if len(cluster.processes) != workers + 1:
                row.fail("a worker did not start")
                return
            deadline = time.monotonic() + (60 if ctx.smoke else 300)
            done = 0
            while time.monotonic() < deadline:
                with cluster.engine.connect() as db:
                    done = db.exec_driver_sql(
                        "SELECT COUNT(*) FROM executions WHERE status IN ('succeeded', 'failed')"
                    ).scalar_one()
                if done >= executions:
                    break
                time.sleep(0.05)
            with cluster.engine.connect() as db:
                failed = db.exec_driver_sql(
                    "SELECT COUNT(*) FROM executions WHERE status <> 'succeeded'"
                ).scalar_one()
                first, last = db.exec_driver_sql(
                    "SELECT MIN(started_at), MAX(finished_at) FROM executions"
                ).one()
                after = db.exec_driver_sql(
                    "SELECT COUNT(*) FROM executions WHERE finished_at > %(t)s", {"t": all_up}
                ).scalar_one()
            if done < executions or failed:
                row.fail(f"{done}/{executions} finished, {failed} not succeeded")
                return
            window = "all workers up"
            if after < executions // 10 or last <= all_up:
                after, all_up, window = executions, first, "first start (finished before all up)"
            row.runnel = {
                "workers": workers,
                "executions": executions,
                "measured_executions": after,
                "measured_from": window,
                "seconds": round(last - all_up, 3),
                "rate": round(after / (last - all_up), 1),
                "rate_first_start_to_last_finish": round(executions / (last - first), 1),
            }
        finally:
            cluster.close()


# --------------------------------------------------------------------------------------------
# The plan


@dataclass
class Workload:
    row: Row
    run: Callable[[Context, Row], None]
    uses_nodered: bool = True


def plan() -> list[Workload]:
    def w1(history: bool) -> Callable[[Context, Row], None]:
        return lambda ctx, row: webhook_row(
            ctx,
            row,
            webhook_workflow(history),
            "/webhooks/bench",
            {"a": 1, "seen": True},
            nodered.webhook_flow("/webhooks/bench"),
        )

    def w2(history: bool) -> Callable[[Context, Row], None]:
        return lambda ctx, row: webhook_row(
            ctx,
            row,
            chain_workflow("w2", 40, hook="chain", history=history),
            "/webhooks/chain",
            {"a": 1, "n": 40},
            nodered.chain_flow("/webhooks/chain", 40),
        )

    def l40(ctx: Context, row: Row) -> None:
        latency_row(
            ctx,
            row,
            chain_workflow("l40", 40, hook=None),
            _expect_execution(40),
            nodered.chain_flow("/webhooks/chain", 40),
            "/webhooks/chain",
            _expect_json({"a": 1, "n": 40}),
        )

    def f100(ctx: Context, row: Row) -> None:
        latency_row(
            ctx,
            row,
            fanout_workflow(100),
            _expect_execution(102),
            nodered.fanout_flow("/webhooks/fanout", 100),
            "/webhooks/fanout",
            _expect_fanout(100),
        )

    def pg(workers: int) -> Callable[[Context, Row], None]:
        return lambda ctx, row: postgres_row(ctx, row, workers)

    return [
        Workload(
            Row(
                "W1-saved", "W1", "webhook, transform.set, history saved", "req/s", ">= 5,000 req/s"
            ),
            w1(True),
        ),
        Workload(
            Row("W1-off", "W1", "webhook, transform.set, history off", "req/s", ">= 1.0x Node-RED"),
            w1(False),
        ),
        Workload(
            Row(
                "W2-saved",
                "W2",
                "webhook, 40 chained sets, history saved",
                "req/s",
                ">= 0.5x Node-RED",
            ),
            w2(True),
        ),
        Workload(
            Row(
                "W2-off", "W2", "webhook, 40 chained sets, history off", "req/s", ">= 1.0x Node-RED"
            ),
            w2(False),
        ),
        Workload(
            Row("L40", "L40", "execute 40-node chain, sequential, SQLite", "ms", "median <= 5 ms"),
            l40,
        ),
        Workload(
            Row("F100", "F100", "execute fan-out 100 + merge, sequential", "ms", "median <= 15 ms"),
            f100,
        ),
        Workload(
            Row("EV", "EV", "node finished -> /api/events client", "ms", "p99 <= 5 ms"),
            events_row,
            uses_nodered=False,
        ),
        Workload(
            Row("PG-1", "PG", "PostgreSQL, 5-node workflow, 1 worker", "exec/s", "-"),
            pg(1),
            uses_nodered=False,
        ),
        Workload(
            Row(
                "PG-2", "PG", "PostgreSQL, 5-node workflow, 2 workers", "exec/s", ">= 1,000 exec/s"
            ),
            pg(2),
            uses_nodered=False,
        ),
        Workload(
            Row("PG-4", "PG", "PostgreSQL, 5-node workflow, 4 workers", "exec/s", "-"),
            pg(4),
            uses_nodered=False,
        ),
    ]


NO_NODERED = {
    "EV": "Node-RED has no execution event stream (its debug socket belongs to the editor, "
    "which is off)",
    "PG": "Node-RED has no shared database or worker processes to compare",
}


#: Rows a smoke run leaves out unless ``--only`` names them (each PG row starts a cluster).
SMOKE_SKIPS = {
    "PG-1": "skipped in smoke runs (PG-2 stands for PostgreSQL); --only PG-1 runs it",
    "PG-4": "skipped in smoke runs (PG-2 stands for PostgreSQL); --only PG-4 runs it",
}


def judge(row: Row) -> None:
    """Set ``row.met`` from its figures (None: not measurable here)."""
    r = row.runnel or {}
    if row.status != "ok" or not r:
        return
    if row.id == "W1-saved":
        row.met = r["rate"] >= 5000
    elif row.id in ("W1-off", "W2-off"):
        row.met = None if row.ratio is None else row.ratio >= 1.0
    elif row.id == "W2-saved":
        row.met = None if row.ratio is None else row.ratio >= 0.5
    elif row.id == "L40":
        row.met = r["p50_ms"] <= 5
    elif row.id == "F100":
        row.met = r["p50_ms"] <= 15
    elif row.id == "EV":
        row.met = r["p99_ms"] <= 5
    elif row.id == "PG-2":
        row.met = r["rate"] >= 1000


# --------------------------------------------------------------------------------------------
# Report


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def primary(row: Row, side: dict[str, Any] | None) -> str:
    if side is None:
        return "-"
    if row.unit == "ms":
        return f"p50 {_num(side['p50_ms'], 2)} / p99 {_num(side['p99_ms'], 2)} ms"
    return f"{_num(side['rate'])} {row.unit}"


def _grid(lines: Sequence[Sequence[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def table(rows: list[Row]) -> str:
    """The summary: each row's main figure on both sides, the ratio and the target."""
    lines = [("row", "runnel", "Node-RED", "runnel/Node-RED", "target", "met")]
    for row in rows:
        if row.status not in ("ok", "error") or (row.status == "error" and not row.runnel):
            runnel_text = row.status
        else:
            runnel_text = primary(row, row.runnel)
        red = primary(row, row.nodered) if row.nodered else "n/a"
        ratio = "-"
        if row.ratio is not None:
            ratio = f"{row.ratio:.2f}x" + (" (p50)" if row.unit == "ms" else "")
        met = {True: "met", False: "NOT MET", None: "-"}[row.met]
        if row.status == "error":
            met = "ERROR"
        lines.append((row.id, runnel_text, red, ratio, row.target, met))
    return _grid(lines)


def details(rows: list[Row]) -> str:
    """Every figure of each side, then the notes."""
    lines = [
        ("row", "side", "rate", "p50 ms", "p99 ms", "CPU ms/req", "peak MiB", "samples", "more")
    ]
    notes = []
    for row in rows:
        for side, figures in (("runnel", row.runnel), ("Node-RED", row.nodered)):
            if not figures:
                continue
            rate = f"{_num(figures['rate'])} {row.unit}" if "rate" in figures else "-"
            cpu = figures.get("cpu_ms_per_request")
            samples = figures.get("requests", figures.get("events", figures.get("executions")))
            more = []
            if figures.get("stored_executions") is not None:
                more.append(f"executions stored {_num(figures['stored_executions'])}")
            if "loader" in figures:
                more.append(f"{figures['loader']}, {figures['seconds']:.1f} s")
            if "workers" in figures:
                more.append(
                    f"{figures['measured_executions']} in {figures['seconds']:.2f} s from "
                    f"{figures['measured_from']}; first start to last finish "
                    f"{_num(figures['rate_first_start_to_last_finish'])} exec/s"
                )
            lines.append(
                (
                    row.id,
                    side,
                    rate,
                    _num(figures.get("p50_ms"), 2),
                    _num(figures.get("p99_ms"), 2),
                    _num(cpu, 3),
                    _num(figures.get("peak_rss_mb")),
                    _num(samples),
                    "; ".join(more),
                )
            )
        notes += [f"  {row.id}: {note}" for note in row.notes]
        if row.nodered_note and not row.nodered:
            notes.append(f"  {row.id}: Node-RED n/a: {row.nodered_note}")
    return _grid(lines) + ("\n\nnotes:\n" + "\n".join(notes) if notes else "")


def markdown(report: dict[str, Any]) -> str:
    """The two tables of a saved report in Markdown (for docs/performance.md)."""
    rows = report["rows"]
    out = [
        "| row | what | runnel | Node-RED | runnel / Node-RED | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in rows:
        row = Row(item["id"], item["workload"], item["title"], item["unit"], item["target"])
        r, n = item["runnel"], item["nodered"]

        def cell(figures: dict[str, Any] | None, row: Row = row) -> str:
            if figures is None:
                return "n/a"
            if row.unit == "ms":
                return f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
            return f"{_num(figures['rate'])} {row.unit}"

        ratio = item["ratio_runnel_over_nodered"]
        ratio_text = (
            "-" if ratio is None else f"{ratio:.2f}x" + (" (p50)" if row.unit == "ms" else "")
        )
        met = {True: "yes", False: "no", None: "-"}[item["target_met"]]
        runnel_text = cell(r) if item["status"] == "ok" else item["status"]
        out.append(
            f"| {row.id} | {row.title} | {runnel_text} | {cell(n)} | {ratio_text} | "
            f"{row.target} | {met} |"
        )
    out += [
        "",
        "| row | side | rate | p50 ms | p99 ms | CPU ms/req | peak MiB | samples |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for item in rows:
        for side, figures in (("runnel", item["runnel"]), ("Node-RED", item["nodered"])):
            if not figures:
                continue
            rate = f"{_num(figures['rate'])} {item['unit']}" if "rate" in figures else "-"
            samples = figures.get("requests", figures.get("events", figures.get("executions")))
            out.append(
                f"| {item['id']} | {side} | {rate} | {_num(figures.get('p50_ms'), 2)} | "
                f"{_num(figures.get('p99_ms'), 2)} | "
                f"{_num(figures.get('cpu_ms_per_request'), 3)} | "
                f"{_num(figures.get('peak_rss_mb'))} | {_num(samples)} |"
            )
    return "\n".join(out)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    load_avg = os.getloadavg()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "kernel": platform.release(),
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load_avg],
    }


def versions(ctx: Context) -> dict[str, Any]:
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        commit = done.stdout.strip() or None
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if commit and changed.stdout.strip():
            commit += "+uncommitted changes"
    return {
        "python": platform.python_version(),
        "runnel": package_version("runnel"),
        "runnel_commit": commit,
        "node": nodered.node_version(),
        "node_red": nodered.installed_version(),
        "wrk": load.wrk_version() if ctx.loader == "wrk" else None,
        "loader": ctx.loader,
    }


# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="about a second per workload")
    parser.add_argument("--only", help="comma-separated rows or workloads (W1,L40,PG-2)")
    parser.add_argument(
        "--duration", type=float, default=MAX_SECONDS, help="seconds per run (<= 20)"
    )
    parser.add_argument("--no-nodered", action="store_true", help="runnel only")
    parser.add_argument(
        "--nodered", action="store_true", help="with --smoke: install and run Node-RED too"
    )
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("RUNNEL_BENCH_POSTGRES_URL", POSTGRES_URL)
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip the PG rows")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument(
        "--markdown", type=Path, metavar="JSON", help="print a saved report as Markdown and exit"
    )
    return parser.parse_args(argv)


def selected(workloads: list[Workload], only: str | None) -> list[Workload]:
    if not only:
        return workloads
    wanted = {item.strip().upper() for item in only.split(",") if item.strip()}
    chosen = [w for w in workloads if w.row.id.upper() in wanted or w.row.workload in wanted]
    unknown = wanted - {w.row.id.upper() for w in chosen} - {w.row.workload for w in chosen}
    if unknown:
        raise SystemExit(f"--only: unknown rows {sorted(unknown)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        say(markdown(json.loads(args.markdown.read_text())))
        return 0
    started = datetime.now(UTC)
    seconds = SMOKE_SECONDS if args.smoke else min(max(args.duration, 1.0), MAX_SECONDS)
    workloads = selected(plan(), args.only)

    wrk = None
    loader = args.loader
    if loader in ("auto", "wrk"):
        # A full run installs wrk when missing (as root); a smoke run takes what is there.
        wrk = load.ensure_wrk(install=not args.smoke, say=say)
        if wrk is None and loader == "wrk":
            say("--loader wrk: wrk is not available")
            return 2
        if wrk is None and not args.smoke:
            say("wrk is not available: pass --loader python to use the (slower) Python loader")
            return 2
        loader = "wrk" if wrk is not None else "python"

    use_nodered = not args.no_nodered and (not args.smoke or args.nodered)
    nodered_note = None
    if args.smoke and not args.no_nodered and not args.nodered and nodered.installed_version():
        use_nodered = True  # smoke: Node-RED only when it is already there
    if use_nodered and any(w.uses_nodered for w in workloads):
        try:
            say(f"Node-RED {nodered.install()} in {nodered.NODERED_DIR}")
        except Exception as exc:
            use_nodered = False
            nodered_note = f"Node-RED unavailable: {exc}"
            say(nodered_note)
    elif not use_nodered:
        nodered_note = "Node-RED not run (--no-nodered, or --smoke without it installed)"

    postgres = not args.no_postgres
    pg_note = "skipped (--no-postgres)"
    if postgres and any(w.row.workload == "PG" for w in workloads):
        problem = postgres_problem(args.postgres_url)
        if problem is not None:
            postgres, pg_note = False, f"skipped: {problem}"

    scratch = Path(tempfile.mkdtemp(prefix="runnel-bench-"))
    ctx = Context(
        smoke=args.smoke,
        seconds=seconds,
        loader=loader,
        wrk=wrk,
        nodered=use_nodered,
        postgres_url=args.postgres_url,
        postgres=postgres,
        scratch=scratch,
    )
    info = machine_info()
    say(
        f"{'smoke' if args.smoke else 'full'} run: {seconds:g} s per load, {CONNECTIONS} "
        f"connections, loader {loader}; {info['cpu_model']}, {info['cores']} cores, "
        f"load average {info['load_average_at_start']}"
    )
    named = {item.strip().upper() for item in (args.only or "").split(",")}
    rows: list[Row] = []
    try:
        for workload in workloads:
            row = workload.row
            rows.append(row)
            if workload.row.workload == "PG" and not ctx.postgres:
                row.status = "skipped"
                row.notes.append(pg_note)
                say(f"{row.id}: {pg_note}")
                continue
            if args.smoke and row.id in SMOKE_SKIPS and row.id not in named:
                row.status = "skipped"
                row.notes.append(SMOKE_SKIPS[row.id])
                say(f"{row.id}: {SMOKE_SKIPS[row.id]}")
                continue
            say(f"{row.id}: {row.title} ...")
            began = time.monotonic()
            try:
                workload.run(ctx, row)
            except Exception as exc:
                row.fail(f"{type(exc).__name__}: {exc}")
                traceback.print_exc()
            if row.nodered is None and row.nodered_note is None:
                row.nodered_note = NO_NODERED.get(row.workload) or nodered_note
            judge(row)
            say(
                f"  {row.status}: runnel {primary(row, row.runnel)}; Node-RED "
                f"{primary(row, row.nodered) if row.nodered else 'n/a'} "
                f"({time.monotonic() - began:.1f} s)"
            )
            for note in row.notes:
                say(f"  note: {note}")
    finally:
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)

    errors = [row.id for row in rows if row.status == "error"]
    v = versions(ctx)
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "seconds_per_run": seconds,
        "connections": CONNECTIONS,
        "machine": {**info, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": v,
        "caveat": "2-core machine shared with other work: load and clients compete for the "
        "same cores, figures are noisy",
        "rows": [row.as_dict() for row in rows],
        "errors": errors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    say("")
    say(table(rows))
    say("")
    say(details(rows))
    say("")
    say(
        f"python {v['python']}, runnel {v['runnel']} ({v['runnel_commit']}), node {v['node']}, "
        f"node-red {v['node_red']}, {v['wrk'] or 'loader ' + v['loader']}; "
        f"kernel {info['kernel']}"
    )
    say(f"JSON: {args.out}")
    if errors:
        say(f"errored: {', '.join(errors)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
