"""Webhook triggers, ``--no-auth`` and the server's own lifecycle."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from e2e.events import read_until
from e2e.harness import RunningServer, free_port, run_cli, start_server
from e2e.workflows import connection, document, node, setter

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def webhook(path: str, **config: Any) -> list[dict[str, Any]]:
    trigger_type = {"type": "Webhook", "path": path, **config}
    return [{"id": "hook", "trigger_type": trigger_type, "enabled": True}]


def test_webhook_answers_the_end_nodes_value(server: RunningServer, client: httpx.Client) -> None:
    wf = document("e2e-hook", [setter("order", status="received")], triggers=webhook("orders/new"))
    assert client.post("/api/workflows", json=wf).status_code == 200
    # Public: no API key; the JSON body is the inputs (plain JSON or typed values).
    answer = httpx.post(f"{server.base_url}/webhooks/orders/new", json={"amount": 5})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"amount": 5, "status": "received"}
    typed = httpx.post(
        f"{server.base_url}/webhooks/orders/new/", json={"amount": {"type": "Number", "value": 7}}
    )
    assert typed.json() == {"amount": 7, "status": "received"}
    empty = httpx.post(f"{server.base_url}/webhooks/orders/new")
    assert empty.json() == {"status": "received"}
    listed = client.get("/api/executions?workflow_id=e2e-hook").json()
    assert listed["total"] == 3
    assert {e["trigger"] for e in listed["executions"]} == {"webhook"}

    not_object = httpx.post(f"{server.base_url}/webhooks/orders/new", json=[1])
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]
    unknown = httpx.post(f"{server.base_url}/webhooks/orders/old", json={})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "No workflow listens on /webhooks/orders/old"}


def test_webhook_with_several_end_nodes_and_failures(
    server: RunningServer, client: httpx.Client
) -> None:
    wf = document(
        "e2e-hook-many",
        [setter("start"), setter("left", side="l"), setter("right", side="r")],
        [connection("start", "left"), connection("start", "right")],
        triggers=webhook("many"),
    )
    assert client.post("/api/workflows", json=wf).status_code == 200
    answer = httpx.post(f"{server.base_url}/webhooks/many", json={"x": 1})
    assert answer.json() == {
        "left": {"value": {"x": 1, "side": "l"}},
        "right": {"value": {"x": 1, "side": "r"}},
    }
    failing = document(
        "e2e-hook-fail",
        [node("parse", "transform.json_parse")],
        triggers=webhook("fail"),
    )
    assert client.post("/api/workflows", json=failing).status_code == 200
    failed = httpx.post(f"{server.base_url}/webhooks/fail", json={"json": "{not json"})
    assert failed.status_code == 500
    assert failed.json()["error"].startswith("Node execution failed: ")


def test_webhook_that_responds_immediately(server: RunningServer, client: httpx.Client) -> None:
    wf = document(
        "e2e-hook-now", [setter("a", n=1)], triggers=webhook("now", respond="immediately")
    )
    assert client.post("/api/workflows", json=wf).status_code == 200
    answer = httpx.post(f"{server.base_url}/webhooks/now", json={})
    assert answer.status_code == 202
    execution_id = answer.json()["execution_id"]
    assert client.get(f"/api/executions/{execution_id}").status_code == 200


def test_no_auth_refuses_a_public_bind(tmp_path: Path) -> None:
    done = run_cli(
        "serve", "--no-auth", "--bind", f"0.0.0.0:{free_port()}", "--data-dir", str(tmp_path)
    )
    assert done.returncode == 2
    assert "--no-auth refuses to listen on 0.0.0.0" in done.stderr
    assert not (tmp_path / "admin-token").exists()


def test_no_auth_on_loopback_and_a_clean_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir, args=["--no-auth"])
    try:
        banner = "".join(running.stdout)
        assert "auth: OFF" in banner and f"data: {data_dir}" in banner
        assert "Admin token (shown once" in banner and running.token in banner
        created = httpx.post(
            f"{running.base_url}/api/workflows", json=document("open", [setter("a")])
        )
        assert created.status_code == 200
        ran = httpx.post(f"{running.base_url}/api/workflows/open/execute", json={})
        assert ran.json()["completed_nodes"] == 1
    finally:
        assert running.stop() == 0
    assert "Application shutdown complete" in running.log()

    # A second start on the same data dir keeps everything and shows no token.
    again = start_server(data_dir)
    try:
        assert "Admin token" not in "".join(again.stdout)
        with again.client() as c:
            assert c.get("/api/workflows/open").status_code == 200
            assert c.get("/api/executions?workflow_id=open").json()["total"] == 1
    finally:
        assert again.stop() == 0


def read_until_closed(ws: ClientConnection) -> list[str | bytes]:
    """What the server still sends before it closes the socket (a timeout fails)."""
    messages: list[str | bytes] = []
    try:
        while True:
            messages.append(ws.recv(timeout=30))
    except ConnectionClosed:
        return messages


def test_sigterm_while_an_execution_runs(tmp_path: Path) -> None:
    """The waiting request answers with the run's status, the socket closes, the process
    exits 0 at once (not after the grace period for open connections), and the run is
    checkpointed: after a restart it is still there."""
    data_dir = tmp_path / "data"
    running = start_server(data_dir, env={"RUNNEL_SHUTDOWN_TIMEOUT": "1"})
    wf = document("slow", [setter("a"), node("sleep", "time.delay", delay_ms=120_000)])
    answers: list[httpx.Response] = []
    try:
        with running.client() as client:
            assert client.post("/api/workflows", json=wf).status_code == 200
            with connect(
                f"{running.ws_url}/api/events?workflow_id=slow", additional_headers=running.auth
            ) as ws:
                waiter = threading.Thread(
                    target=lambda: answers.append(
                        client.post("/api/workflows/slow/execute", json={})
                    )
                )
                waiter.start()
                started = read_until(
                    ws, lambda m: m["type"] == "NodeStarted" and m["node_id"] == "sleep"
                )
                execution_id = started[-1]["execution_id"]
                began = time.monotonic()
                assert running.stop() == 0
                assert time.monotonic() - began < 15
                waiter.join(30)
                read_until_closed(ws)
    finally:
        running.stop()
    (answer,) = answers
    assert answer.status_code == 202, answer.text
    assert answer.json()["execution_id"] == execution_id
    assert answer.json()["status"] in {"queued", "running"}

    again = start_server(data_dir)
    try:
        with again.client() as client:
            detail = client.get(f"/api/executions/{execution_id}").json()
            runs = {run["node_id"]: run for run in detail["nodes"]}
            assert runs["a"]["status"] == "succeeded"
    finally:
        assert again.stop() == 0
