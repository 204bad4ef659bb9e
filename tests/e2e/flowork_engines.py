"""Real Flowork engines for the end-to-end tests: a ``runnel serve`` gateway (with its
embedded engine) and a separate ``runnel engine`` process linked to it, each reachable on
its own Core Engine socket, plus a loopback HTTP server that records what reaches it.

``start_gateway`` and ``start_engine`` are the process starters of
``test_e2e_flowork_remote_engine.py``, with extra environment; ``engine_stack_fixture``
starts one gateway and one linked engine for a whole module (yield it from a
module-scoped fixture) and stops both cleanly."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from e2e.flowork import SECRET, Gateway
from e2e.harness import RUNNEL, RunningServer, _env, free_port, start_server
from flowork_keys import Wallet

__all__ = [
    "WAIT",
    "EngineStack",
    "EngineTarget",
    "Loopback",
    "engine_stack_fixture",
    "loopback_server",
    "start_engine",
    "start_gateway",
    "wait_for_count",
]

#: Seconds to wait for a process line, a connection, a job.
WAIT = 60.0
#: What the engine processes of a stack get: ``http.request`` may reach the loopback server.
ENGINE_ENV: Mapping[str, str] = {
    "RUNNEL_HTTP_ALLOWED_HOSTS": "127.0.0.1",
    "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
}


def start_gateway(
    data_dir: Path, owner: Wallet, bind: str, env: Mapping[str, str] | None = None
) -> Gateway:
    """``runnel serve`` with the gateway secret, ``owner`` as its owner address."""
    merged = {
        "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
        "RUNNEL_OWNER_ADDRESS": owner.address,
        "GATEWAY_SECRET_TOKEN": SECRET,
        **(env or {}),
    }
    return Gateway(start_server(data_dir, env=merged, bind=bind), owner, SECRET)


def start_engine(
    gateway_url: str,
    engine_id: str,
    token: str,
    data_dir: Path,
    bind: str,
    env: Mapping[str, str] | None = None,
) -> RunningServer:
    """``runnel engine`` with fast reconnection; returns once it listens."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.with_name(data_dir.name + ".log")
    merged = _env(
        {
            "GATEWAY_SECRET_TOKEN": SECRET,
            "RUNNEL_ENGINE_RECONNECT_MAX_SECONDS": "1",
            "RUNNEL_ENGINE_REFUSED_RETRY_SECONDS": "1",
            **(env or {}),
        }
    )
    args = ["--gateway", gateway_url, "--engine-id", engine_id, "--token", token]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(RUNNEL), "engine", *args, "--bind", bind, "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=merged,
            cwd=data_dir.parent,
        )
    engine = RunningServer(process, f"http://{bind}", data_dir, log_path)
    engine._pump_thread = threading.Thread(target=engine._pump, daemon=True)
    engine._pump_thread.start()
    try:
        engine.wait_for_line("listening on", WAIT)
    except BaseException:
        engine.stop(signal.SIGKILL)
        raise
    return engine


def wait_for_count(process: RunningServer, needle: str, count: int) -> None:
    """Until ``count`` lines of the process's stdout contain ``needle``."""
    while sum(needle in line for line in process.stdout) < count:
        line = process._lines.get(timeout=WAIT)
        if line is None:
            raise AssertionError(process._explain(f"ended before {count} x {needle!r}"))


# -- a loopback HTTP server ----------------------------------------------------------------


@dataclass
class Loopback:
    """``url`` answers every request 200 ``ok``; ``received`` holds ``METHOD path`` of each."""

    url: str
    received: list[str] = field(default_factory=list)

    def hits(self, path: str) -> list[str]:
        return [line for line in list(self.received) if line.split(" ", 1)[1] == path]


@contextlib.contextmanager
def loopback_server() -> Iterator[Loopback]:
    loopback = Loopback("")

    class Recorder(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            loopback.received.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    loopback.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield loopback
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- a gateway and a linked engine ---------------------------------------------------------


@dataclass
class EngineTarget:
    """One engine as a Core Engine client sees it."""

    kind: Literal["embedded", "remote"]
    engine_id: str
    #: ``ws://host:port/``: the socket's root path (``/engine/ws`` answers the same).
    ws_url: str
    #: The one folder ``request_drives`` lists.
    browse_root: Path
    #: The process the engine lives in (the gateway for the embedded one).
    process: RunningServer

    def auth_lists_heard(self) -> int:
        """How many authorization lists a ``runnel engine`` fetched so far (0: embedded,
        which reads the gateway's store on every check)."""
        return sum("authorization list:" in line for line in self.process.stdout)

    def wait_auth_list(self, heard_before: int) -> None:
        """A remote engine fetched its authorization list again since ``heard_before``
        (the gateway pushes ``force_refresh_auth_list`` on a share or a revoke); the
        embedded engine needs no wait."""
        if self.kind == "remote":
            wait_for_count(self.process, "authorization list:", heard_before + 1)


@dataclass
class EngineStack:
    gateway: Gateway
    embedded: EngineTarget
    remote: EngineTarget
    loopback: Loopback

    def target(self, kind: str) -> EngineTarget:
        return self.embedded if kind == "embedded" else self.remote


def _ws(base_url: str) -> str:
    return "ws" + base_url.removeprefix("http") + "/"


def engine_stack_fixture(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[EngineStack]:
    """A gateway owned by a new key and a ``runnel engine`` of that owner linked to it,
    both allowed to reach the loopback server; stops both and checks their exit codes."""
    base = tmp_path_factory.mktemp(name)
    owner = Wallet()
    with loopback_server() as loopback:
        gateway = start_gateway(base / "gateway", owner, f"127.0.0.1:{free_port()}", env=ENGINE_ENV)
        engine: RunningServer | None = None
        try:
            line = gateway.server.wait_for_line("embedded engine: ")
            embedded_id = line.split("embedded engine: ", 1)[1].strip()
            with httpx.Client(base_url=gateway.url, timeout=30) as http:
                created = http.post(
                    "/api/v1/user/engines", json={"name": "e2e remote"}, headers=owner.headers()
                )
            assert created.status_code == 201, created.text
            remote_id, token = created.json()["id"], created.json()["raw_token"]
            remote_root = base / "remote-root"
            bind = f"127.0.0.1:{free_port()}"
            engine = start_engine(
                gateway.url,
                remote_id,
                token,
                base / "engine",
                bind,
                env={**ENGINE_ENV, "RUNNEL_BROWSE_ROOTS": str(remote_root)},
            )
            engine.wait_for_line("gateway: connected", WAIT)
            wait_for_count(engine, "authorization list:", 1)
            yield EngineStack(
                gateway=gateway,
                embedded=EngineTarget(
                    "embedded",
                    embedded_id,
                    _ws(gateway.url),
                    gateway.server.data_dir / "files",
                    gateway.server,
                ),
                remote=EngineTarget("remote", remote_id, _ws(engine.base_url), remote_root, engine),
                loopback=loopback,
            )
        finally:
            engine_code = engine.stop() if engine is not None else 0
            gateway_code = gateway.server.stop()
        assert engine_code == 0, engine.log() if engine is not None else ""
        assert gateway_code == 0, gateway.server.log()
