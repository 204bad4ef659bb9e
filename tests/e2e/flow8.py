"""Helpers and fixtures of the flow8 end-to-end tests: users made with ``runnel users
create`` and signed in over the API, a loopback HTTP receiver (webhooks, a flaky endpoint),
and waiting for play states over ``/api/ws``."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from e2e.harness import RunningServer, run_cli

__all__ = [
    "Person",
    "Receiver",
    "flow8_people",
    "new_person",
    "receiver",
    "wait_for_state",
    "ws_connect",
]

PASSWORD = "correct horse battery"
ENDED = {"DONE", "FAIL", "FILTERED"}


@dataclass
class Person:
    """A user with an API key (``client``) and a signed-in session (``browser``)."""

    id: str
    email: str
    key: str
    client: httpx.Client
    browser: httpx.Client

    def close(self) -> None:
        self.client.close()
        self.browser.close()


def new_person(server: RunningServer, name: str, *, admin: bool = False) -> Person:
    """``runnel users create``, then sign in and make an API key over the API."""
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    args = ["users", "create", "--email", email, "--password", PASSWORD]
    args += ["--data-dir", str(server.data_dir), "--json"]
    if admin:
        args.append("--admin")
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    user_id = json.loads(done.stdout)["id"]
    browser = httpx.Client(base_url=server.base_url, timeout=30)
    signed = browser.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    made = browser.post("/api/auth/api-keys", json={"name": f"{name} tests"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    client = httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return Person(user_id, email, key, client, browser)


@pytest.fixture(scope="session")
def flow8_people(server: RunningServer) -> Iterator[dict[str, Person]]:
    """alice, bob, carol, dave and eve: members, each with a key and a session."""
    names = ("alice", "bob", "carol", "dave", "eve")
    with ThreadPoolExecutor(len(names)) as pool:
        people = dict(zip(names, pool.map(lambda n: new_person(server, n), names), strict=True))
    try:
        yield people
    finally:
        for person in people.values():
            person.close()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server recording what it receives. ``/flaky/<n>/<name>`` drops the
    connection of the first ``n`` requests for ``<name>``, then answers 200."""

    url: str
    requests: list[Received] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, test: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for request in self.requests:
                    if test(request):
                        return request
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"nothing matching arrived; got {self.requests}")
                self.arrived.wait(left)


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = self.path.strip("/").split("/")
            if parts[0] == "flaky" and len(parts) == 3:
                with state.arrived:
                    count = state.counts[parts[2]] = state.counts.get(parts[2], 0) + 1
                if count <= int(parts[1]):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
            with state.arrived:
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                state.arrived.notify_all()
            payload = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextlib.contextmanager
def ws_connect(server: RunningServer, person: Person) -> Iterator[ClientConnection]:
    """``/api/ws`` with ``person``'s key, past its ``connected`` greeting."""
    with connect(
        f"{server.ws_url}/api/ws",
        additional_headers={"Authorization": f"Bearer {person.key}"},
        open_timeout=30,
    ) as socket:
        hello = json.loads(socket.recv(timeout=30))
        assert hello["type"] == "connected"
        yield socket


def wait_for_state(
    server: RunningServer,
    person: Person,
    play_id: str,
    states: set[str],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """The play once its state is one of ``states``: waits on ``/api/ws`` (subscribed to
    the play), reading the play after subscribing so that no change slips between."""
    with ws_connect(server, person) as socket:
        socket.send(json.dumps({"type": "subscribe", "playId": play_id}))
        deadline = time.monotonic() + timeout
        checked = False
        while True:
            if not checked:
                play: dict[str, Any] = person.client.get(f"/api/plays/{play_id}").json()
                if play["state"] in states:
                    return play
                checked = True
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"play {play_id} not in {states}: {play}")
            message = json.loads(socket.recv(timeout=left))
            if message.get("type") in ("play", "subscribed", "lagged"):
                checked = False  # read the play again: it may have changed
