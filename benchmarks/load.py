"""Load generators for ``benchmarks/run.py``: ``wrk`` (a Lua script posts the body and its
``done`` hook prints the summary as JSON) and a pure-Python fallback (asyncio, raw HTTP/1.1
keep-alive connections) for machines without ``wrk``. Both return the same ``LoadResult``.

Plus ``sequential``: one keep-alive connection, one request at a time, every latency kept
(for the single-execution latency workloads).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "LoadResult",
    "SequentialResult",
    "ensure_wrk",
    "python_load",
    "read_response",
    "sequential",
    "wrk_load",
    "wrk_version",
]

CONNECTIONS = 50


@dataclass
class LoadResult:
    loader: str
    connections: int
    seconds: float
    requests: int
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


@dataclass
class SequentialResult:
    requests: int
    failed: int
    errors: list[str]
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


# --------------------------------------------------------------------------------------------
# wrk


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if path is None:
        return None
    # wrk prints its version line (then the usage) and exits 1 on -v.
    done = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def ensure_wrk(install: bool, say: Callable[[str], None]) -> str | None:
    """The path of ``wrk``; installs the Debian package when missing, ``install`` is set and
    we are root. None (after saying how to install it) when it is still missing."""
    path = shutil.which("wrk")
    if path is not None or not install:
        return path
    if os.geteuid() != 0:
        say("wrk is missing: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu)")
        return None
    say("wrk is missing: apt-get install -y wrk ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ("install", "update"):
        if attempt == "update":
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=300)
        done = subprocess.run(
            ["apt-get", "install", "-y", "wrk"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if done.returncode == 0 and shutil.which("wrk"):
            return shutil.which("wrk")
    say("could not install wrk: run `apt-get update && apt-get install -y wrk` by hand")
    return None


_LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%.1f, "p90_us": %%.1f, ' ..
    '"p99_us": %%.1f, "max_us": %%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_load(
    wrk: str, url: str, body: bytes, seconds: float, connections: int = CONNECTIONS
) -> LoadResult:
    """``wrk -t1 -c<connections> -d<seconds>s`` POSTing ``body`` (one wrk thread: the server
    and wrk share two cores). ``non_2xx`` is wrk's count of statuses >= 400."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA % {"body": body.decode()})
        command = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line.removeprefix("WRKJSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no summary (exit {done.returncode}): {done.stderr}")
    # Non-2xx statuses below 400 (none expected here) are in wrk's text summary only.
    non_2xx = int(data["status"])
    for line in done.stdout.splitlines():
        if line.strip().startswith("Non-2xx or 3xx responses:"):
            non_2xx = max(non_2xx, int(line.split(":")[1]))
    return LoadResult(
        loader="wrk",
        connections=connections,
        seconds=data["duration_us"] / 1e6,
        requests=int(data["requests"]),
        non_2xx=non_2xx,
        socket_errors=sum(int(data[k]) for k in ("connect", "read", "write", "timeout")),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )


# --------------------------------------------------------------------------------------------
# The pure-Python fallback


def _request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length >= 0:
        return status, await reader.readexactly(length)
    if not chunked:
        raise RuntimeError("response without Content-Length or chunked encoding")
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, bytes(body)
        body += chunk[:-2]


async def _python_load(
    url: str, body: bytes, seconds: float, connections: int
) -> tuple[list[float], int, int, float]:
    host, port, request = _request(url, body)
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket": 0}

    async def client(deadline: float) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counts["socket"] += 1
            return
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                latencies.append(time.perf_counter() - began)
                if not 200 <= status < 300:
                    counts["non_2xx"] += 1
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            counts["socket"] += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(began + seconds) for _ in range(connections)))
    return latencies, counts["non_2xx"], counts["socket"], time.perf_counter() - began


def _quantile(sorted_samples: list[float], q: float) -> float:
    if not sorted_samples:
        return 0.0
    return sorted_samples[min(len(sorted_samples) - 1, int(len(sorted_samples) * q))]


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is one of runnel's dependencies
        return asyncio.run(coro)
    if sys.version_info >= (3, 12):  # pragma: no cover
        return asyncio.run(coro, loop_factory=uvloop.new_event_loop)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def python_load(
    url: str, body: bytes, seconds: float, connections: int = CONNECTIONS
) -> LoadResult:
    """The fallback: ``connections`` keep-alive connections in one asyncio loop (uvloop),
    each sending the request again as soon as the answer is in. It competes with the server
    for the CPU more than wrk does, so its rates are lower bounds."""
    latencies, non_2xx, socket_errors, elapsed = _run(_python_load(url, body, seconds, connections))
    latencies.sort()
    return LoadResult(
        loader="python",
        connections=connections,
        seconds=elapsed,
        requests=len(latencies),
        non_2xx=non_2xx,
        socket_errors=socket_errors,
        p50_ms=_quantile(latencies, 0.50) * 1000,
        p90_ms=_quantile(latencies, 0.90) * 1000,
        p99_ms=_quantile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] if latencies else 0.0) * 1000,
    )


# --------------------------------------------------------------------------------------------
# Sequential requests on one connection


def sequential(
    url: str,
    body: bytes,
    *,
    count: int,
    seconds: float,
    check: Callable[[int, bytes], str | None],
    warmup: int = 10,
) -> SequentialResult:
    """``count`` POSTs one after the other on one keep-alive connection (stops early after
    ``seconds``); ``check(status, body)`` returns an error text for a wrong answer."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    samples: list[float] = []
    errors: list[str] = []
    failed = 0
    try:
        for _ in range(warmup):
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
        deadline = time.perf_counter() + seconds
        while len(samples) < count and time.perf_counter() < deadline:
            began = time.perf_counter()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            answer = response.read()
            samples.append(time.perf_counter() - began)
            problem = check(response.status, answer)
            if problem is not None:
                failed += 1
                if len(errors) < 5:
                    errors.append(problem)
    finally:
        connection.close()
    ordered = sorted(samples)
    return SequentialResult(
        requests=len(samples),
        failed=failed,
        errors=errors,
        p50_ms=(statistics.median(ordered) if ordered else 0.0) * 1000,
        p99_ms=_quantile(ordered, 0.99) * 1000,
        mean_ms=(statistics.fmean(ordered) if ordered else 0.0) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
    )
