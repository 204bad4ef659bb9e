"""A real HTTP server on 127.0.0.1 for the ``http.request`` tests (stdlib, in a thread)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LocalServer", "start_server", "stop_server"]


@dataclass(frozen=True, slots=True)
class LocalServer:
    host: str
    port: int
    #: Set to let a waiting ``/slow`` request answer.
    release: threading.Event

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays clean
        pass

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        if path == "/text":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif path == "/json":
            self._send(200, b'{"ok": true, "n": 1}', "application/json")
        elif path == "/problem":
            self._send(422, b'{"error": "bad"}', "application/problem+json")
        elif path == "/badjson":
            self._send(200, b"not json", "application/json")
        elif path == "/latin1":
            self._send(200, "café".encode("latin-1"), "text/plain; charset=latin-1")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"nope", "text/plain")
        elif path == "/echo":
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else None
            echo = {
                "method": self.command,
                "path": path,
                "query": parse_qs(parts.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            self._send(200, json.dumps(echo).encode(), "application/json")
        elif path == "/setcookie":
            self.send_response(200)
            self.send_header("Set-Cookie", "sid=from-server; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/redirect":
            self.send_response(int(query.get("code", "302")))
            self.send_header("Location", query["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/big":
            self._send(200, b"x" * int(query["n"]), "text/plain")
        elif path == "/stream":
            # No Content-Length: the body ends when the connection closes, so only the
            # streaming cap can stop it.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(int(query["n"]) // 100):
                self.wfile.write(b"y" * 100)
        elif path == "/slow":
            self.server.release.wait(timeout=5)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no route", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    release: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) makes the handler's write fail; expected.
        pass


def start_server() -> tuple[LocalServer, _Server, threading.Thread]:
    """Serve on a free port of 127.0.0.1 in a daemon thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="test-http", daemon=True
    )
    thread.start()
    return LocalServer("127.0.0.1", server.server_address[1], server.release), server, thread


def stop_server(server: _Server, thread: threading.Thread) -> None:
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
