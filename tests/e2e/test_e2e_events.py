"""The events socket and the stored history: order, replay with after_seq, cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from e2e.events import read_until, read_until_completed
from e2e.harness import RunningServer, free_port
from e2e.workflows import connection, document, node, setter

pytestmark = pytest.mark.e2e

BRANCHING = Path(__file__).resolve().parents[2] / "examples" / "branching.json"


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def kinds(messages: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(m["type"], m.get("node_id")) for m in messages]


def assert_well_ordered(messages: list[dict[str, Any]]) -> None:
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(set(seqs)), seqs
    assert messages[0]["type"] == "WorkflowStarted"
    assert messages[-1]["type"] == "WorkflowCompleted"
    stamps = [m["timestamp"] for m in messages]
    assert stamps == sorted(stamps)
    for message in messages:
        assert message["timestamp"].endswith("Z") and len(message["timestamp"]) == 24


def stored(client: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/api/executions/{execution_id}/events").json()
    events: list[dict[str, Any]] = page["events"]
    return events


def test_branching_workflow_event_order(server: RunningServer, client: httpx.Client) -> None:
    wf = {**json.loads(BRANCHING.read_text()), "id": "e2e-branching"}
    assert client.post("/api/workflows", json=wf).status_code == 200
    with connect(
        f"{server.ws_url}/api/events?workflow_id=e2e-branching", additional_headers=server.auth
    ) as ws:
        result = client.post(
            "/api/workflows/e2e-branching/execute",
            json={"inputs": {"amount": {"type": "Number", "value": 250}}},
        ).json()
        messages = read_until_completed(ws, result["execution_id"])
    assert_well_ordered(messages)
    order = kinds(messages)

    def at(kind: str, node_id: str) -> int:
        return order.index((kind, node_id))

    for earlier, later in (("order", "check"), ("check", "review"), ("review", "log_review")):
        assert at("NodeStarted", earlier) < at("NodeCompleted", earlier)
        assert at("NodeCompleted", earlier) < at("NodeStarted", later)
    assert ("NodeSkipped", "auto") in order and ("NodeSkipped", "log_auto") in order
    assert ("NodeStarted", "auto") not in order
    infos = [m["event"]["message"] for m in messages if m["type"] == "NodeEvent"]
    assert infos == ["order of 250 from anonymous goes to manual review"]
    completed = messages[-1]
    assert completed["success"] is True and isinstance(completed["duration_ms"], int)
    check = next(m for m in messages if m["type"] == "NodeCompleted" and m["node_id"] == "check")
    assert set(check["outputs"]) == {"true"}
    assert result["completed_nodes"] == 4 and result["total_nodes"] == 6
    # The socket sent exactly what the store keeps.
    assert stored(client, result["execution_id"]) == messages


def test_failing_workflow(server: RunningServer, client: httpx.Client) -> None:
    closed = f"http://127.0.0.1:{free_port()}/down"
    wf = document(
        "e2e-failing",
        [
            setter("a", n=1),
            node("fetch", "http.request", url={"type": "String", "value": closed}),
            setter("after", never=True),
        ],
        [connection("a", "fetch", "value", "body"), connection("fetch", "after", "status")],
    )
    assert client.post("/api/workflows", json=wf).status_code == 200
    with connect(
        f"{server.ws_url}/api/events?workflow_id=e2e-failing", additional_headers=server.auth
    ) as ws:
        response = client.post("/api/workflows/e2e-failing/execute", json={})
        assert response.status_code == 500
        body = response.json()
        assert body["error"].startswith("Node execution failed: ")
        assert "fetch" in body["error"]
        messages = read_until_completed(ws, body["execution_id"])
    assert_well_ordered(messages)
    order = kinds(messages)
    assert order[:4] == [
        ("WorkflowStarted", None),
        ("NodeStarted", "a"),
        ("NodeCompleted", "a"),
        ("NodeStarted", "fetch"),
    ]
    failed = next(m for m in messages if m["type"] == "NodeFailed")
    assert failed["node_id"] == "fetch" and failed["error"]
    assert order.index(("NodeFailed", "fetch")) < len(order) - 1
    assert ("NodeStarted", "after") not in order
    assert messages[-1]["success"] is False and messages[-1]["status"] == "failed"
    # The failed run is recorded with its node runs.
    detail = client.get(f"/api/executions/{body['execution_id']}").json()
    assert detail["status"] == "failed"
    runs = {run["node_id"]: run for run in detail["nodes"]}
    assert runs["a"]["status"] == "succeeded"
    assert runs["a"]["outputs"] == {
        "value": {"type": "Object", "value": {"n": {"type": "Number", "value": 1}}}
    }
    assert runs["fetch"]["status"] == "failed" and runs["fetch"]["error"]
    assert detail["completed_nodes"] == 1 and detail["total_nodes"] == 3


def test_replay_after_seq_then_live_without_gap_or_duplicate(
    server: RunningServer, client: httpx.Client
) -> None:
    wf = document(
        "e2e-replay", [setter("a", n=1), node("gate", "human.approval"), setter("b", done=True)]
    )
    wf["connections"][1]["from_port"] = "approved"
    assert client.post("/api/workflows", json=wf).status_code == 200
    waiting = client.post("/api/workflows/e2e-replay/execute", json={})
    assert waiting.status_code == 202 and waiting.json()["status"] == "waiting"
    execution_id = waiting.json()["execution_id"]
    before = stored(client, execution_id)
    assert before[-1]["type"] == "ExecutionStatusChanged" and before[-1]["status"] == "waiting"

    url = f"{server.ws_url}/api/events?execution_id={execution_id}&after_seq=0"
    with connect(url, additional_headers=server.auth) as ws:
        replayed = read_until(ws, lambda m: m["seq"] == before[-1]["seq"])
        assert replayed == before
        approved = client.post(
            f"/api/executions/{execution_id}/approve", json={"node_id": "gate", "approved": True}
        )
        assert approved.status_code == 200, approved.text
        live = read_until_completed(ws, execution_id)
    seen = replayed + live
    seqs = [m["seq"] for m in seen]
    assert seqs == sorted(set(seqs))
    assert seen == stored(client, execution_id)
    assert ("ApprovalResolved", "gate") in kinds(live)
    assert live[-1]["success"] is True

    # From the middle: only what came after, and the socket knows when it is done.
    middle = before[2]["seq"]
    with connect(
        f"{server.ws_url}/api/events?execution_id={execution_id}&after_seq={middle}",
        additional_headers=server.auth,
    ) as ws:
        tail = read_until_completed(ws, execution_id)
    assert tail == [m for m in seen if m["seq"] > middle]


def test_socket_auth_and_bad_filters(server: RunningServer) -> None:
    url = f"{server.ws_url}/api/events"
    for bad_url, headers, status in (
        (url, {}, 401),
        (url, {"Authorization": "Bearer wrong"}, 401),
        (f"{url}?token=wrong", {}, 401),
        (f"{url}?after_seq=1", server.auth, 400),
        (f"{url}?execution_id=x&after_seq=-1", server.auth, 400),
        (f"{url}?execution_id=nope&after_seq=0", server.auth, 404),
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(bad_url, additional_headers=headers).close()
        assert refused.value.response.status_code == status
        assert json.loads(refused.value.response.body or b"{}")["error"]
    # The token may come in the query (browsers cannot set headers on a WebSocket).
    with connect(f"{url}?token={server.token}"):
        pass


def test_wait_false_and_cancel(server: RunningServer, client: httpx.Client) -> None:
    wf = document("e2e-slow", [node("sleep", "time.delay", delay_ms=60_000)])
    assert client.post("/api/workflows", json=wf).status_code == 200
    with connect(
        f"{server.ws_url}/api/events?workflow_id=e2e-slow", additional_headers=server.auth
    ) as ws:
        accepted = client.post("/api/workflows/e2e-slow/execute?wait=false", json={})
        assert accepted.status_code == 202
        execution_id = accepted.json()["execution_id"]
        read_until(ws, lambda m: m["type"] == "NodeStarted", execution_id)
        cancelled = client.post(f"/api/executions/{execution_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        end = read_until_completed(ws, execution_id)[-1]
    assert end["success"] is False and end["status"] == "cancelled"
    again = client.post(f"/api/executions/{execution_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]
