"""Real ``runnel serve`` processes for the end-to-end tests, and a loopback "GitHub zen".

``start_server`` runs ``.venv/bin/runnel serve --bind 127.0.0.1:<free port> --data-dir
<dir>`` and returns once the server printed that it listens (it prints that after its socket
is bound, so nothing polls). Its stderr (uvicorn's log) goes to a file next to the data dir.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "RUNNEL",
    "ZEN",
    "RunningServer",
    "free_port",
    "run_cli",
    "start_server",
    "zen_server",
]

#: The console script of the venv running the tests.
RUNNEL = Path(sys.executable).with_name("runnel")
ZEN = "Design for failure."
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    log_path: Path
    stdout: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _pump_thread: threading.Thread | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http")

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def wait_for_line(self, needle: str, timeout: float = STARTUP_SECONDS) -> str:
        """The first stdout line containing ``needle`` (the process's output so far is in
        ``stdout``); fails if the process ends first."""
        for line in self.stdout:
            if needle in line:
                return line
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(self._explain(f"no line with {needle!r} in time")) from None
            if line is None:
                raise AssertionError(self._explain(f"exited before printing {needle!r}"))
            if needle in line:
                return line

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(self._explain("did not stop in time")) from None
        finally:
            if self._pump_thread is not None:
                self._pump_thread.join(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _explain(self, what: str) -> str:
        out = "".join(self.stdout)
        return f"runnel serve {what}\n--- stdout\n{out}\n--- stderr\n{self.log()}"

    def _pump(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with stdout:
            for line in stdout:
                self.stdout.append(line)
                self._lines.put(line)
        self._lines.put(None)


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNEL_")}
    env.pop("BIND_ADDRESS", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_server(
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    bind: str | None = None,
    wait: bool = True,
) -> RunningServer:
    """Start ``runnel serve`` on a free loopback port (or ``bind``)."""
    address = bind or f"127.0.0.1:{free_port()}"
    log_path = data_dir.with_name(data_dir.name + ".log")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(RUNNEL), "serve", "--bind", address, "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=_env(env),
            cwd=data_dir.parent,
        )
    server = RunningServer(process, f"http://{address}", data_dir, log_path)
    server._pump_thread = threading.Thread(target=server._pump, daemon=True)
    server._pump_thread.start()
    if wait:
        try:
            server.wait_for_line("listening on")
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
    return server


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``runnel ARGS`` to its end."""
    return subprocess.run(
        [str(RUNNEL), *args], capture_output=True, text=True, env=_env(env), timeout=120
    )


class _Zen(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = ZEN.encode() if self.path == "/zen" else b"not found"
        self.send_response(200 if self.path == "/zen" else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def zen_server() -> Iterator[str]:
    """A loopback HTTP server answering ``GET /zen``; yields its ``/zen`` URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Zen)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/zen"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
