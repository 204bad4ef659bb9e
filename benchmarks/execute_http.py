"""POST /api/workflows/{id}/execute of a 3-node workflow at N concurrent clients, against a
real ``runnel serve`` (a fresh data dir, embedded SQLite, history saved).

    .venv/bin/python benchmarks/execute_http.py [--clients 50] [--seconds 20] [--url URL --token T]

Without ``--url`` it starts ``runnel serve`` itself (rate limiting off) and stops it after.
Prints executions per second and the latency percentiles of the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WORKFLOW: dict[str, Any] = {
    "id": "bench-3",
    "name": "three nodes",
    "nodes": [
        {
            "id": f"n{i}",
            "node_type": "transform.set",
            "config": {"values": {"type": "Json", "value": {f"k{i}": i}}},
        }
        for i in range(3)
    ],
    "connections": [
        {"from_node": "n0", "from_port": "value", "to_node": "n1", "to_port": "value"},
        {"from_node": "n1", "from_port": "value", "to_node": "n2", "to_port": "value"},
    ],
}
BODY = {"inputs": {"x": {"type": "Number", "value": 1}}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    runnel = Path(sys.executable).with_name("runnel")
    env = {**os.environ, "RUNNEL_RATE_LIMIT_PER_SECOND": "0", "RUNNEL_LOG": "warning"}
    process = subprocess.Popen(
        [str(runnel), "serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on" in line:
            return process, f"http://127.0.0.1:{port}"
    raise SystemExit("runnel serve did not start")


async def _client(
    url: str, token: str, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    """One keep-alive connection sending the same request in a loop. A minimal HTTP/1.1
    client (pre-built request, Content-Length responses only): httpx would take as much CPU
    as the server on a small machine, and measure itself."""
    host, _, port = url.removeprefix("http://").partition(":")
    body = json.dumps(BODY).encode()
    request = (
        f"POST /api/workflows/{WORKFLOW['id']}/execute HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _measure(url: str, token: str, clients: int, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        await client.delete(f"/api/workflows/{WORKFLOW['id']}")
        (await client.post("/api/workflows", json=WORKFLOW)).raise_for_status()
    warm: list[float] = []
    await asyncio.gather(
        *(_client(url, token, time.perf_counter() + 2, warm, []) for _ in range(clients))
    )
    latencies: list[float] = []
    errors: list[int] = []
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(_client(url, token, deadline, latencies, errors) for _ in range(clients))
    )
    elapsed = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"clients={clients} seconds={elapsed:.1f} executions={len(latencies)} errors={len(errors)}"
    )
    print(f"executions/s: {len(latencies) / elapsed:.0f}")
    print(
        f"latency ms: p50 {q[49] * 1000:.1f}  p90 {q[89] * 1000:.1f}  p99 {q[98] * 1000:.1f}"
        f"  max {latencies[-1] * 1000:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--url")
    parser.add_argument("--token")
    args = parser.parse_args()
    if args.url:
        asyncio.run(_measure(args.url, args.token, args.clients, args.seconds))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        process, url = _start_server(data_dir)
        try:
            token = (data_dir / "admin-token").read_text().strip()
            asyncio.run(_measure(url, token, args.clients, args.seconds))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


if __name__ == "__main__":
    main()
