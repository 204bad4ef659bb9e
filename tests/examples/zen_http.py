"""A local HTTP server standing in for api.github.com in the example tests (stdlib, a thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ZEN", "ZenHTTPServer", "ZenServer"]

ZEN = "Design for failure."


@dataclass
class ZenServer:
    """Where the server listens and which paths it was asked for."""

    url: str
    requests: list[str] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: ZenHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""
        del format, args

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        body = ZEN.encode() if self.path == "/zen" else b"not found"
        self.send_response(200 if self.path == "/zen" else 404)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ZenHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[str] = []
