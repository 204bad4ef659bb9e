"""The seed's own examples (curl, Python, JavaScript), against the real server, unchanged
except for the credentials and a loopback URL in place of api.github.com."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from e2e.harness import ZEN, RunningServer

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GITHUB_ZEN = EXAMPLES / "github_zen.json"


@pytest.fixture
def fresh_zen(server: RunningServer) -> Any:
    """Before and after: no workflow ``github-zen`` (each example registers it anew)."""
    with server.client() as client:
        client.delete("/api/workflows/github-zen")
        yield
        client.delete("/api/workflows/github-zen")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.usefixtures("fresh_zen")
def test_quick_start_with_curl(server: RunningServer, zen_url: str) -> None:
    auth = f"Authorization: Bearer {server.token}"

    def curl(*args: str) -> Any:
        done = subprocess.run(
            ["curl", "-sS", "-H", auth, *args], capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)

    assert curl(f"{server.base_url}/health") == {
        "status": "healthy",
        "version": "0.1.0",
        "service": "flowengine",
    }
    created = curl(
        "-X", "POST", f"{server.base_url}/api/workflows",
        "-H", "Content-Type: application/json",
        "-d", f"@{GITHUB_ZEN}",
    )  # fmt: skip
    assert created == {
        "id": "github-zen",
        "message": "Workflow created successfully",
        "version": 1,
    }
    inputs = {"inputs": {"url": {"type": "String", "value": zen_url}}}
    result = curl(
        "-X", "POST", f"{server.base_url}/api/workflows/{created['id']}/execute",
        "-H", "Content-Type: application/json",
        "-d", json.dumps(inputs),
    )  # fmt: skip
    assert result["completed_nodes"] == 2
    assert result["total_nodes"] == 2
    assert result["outputs"]["log"]["message"] == {"type": "String", "value": ZEN}
    listed = curl(f"{server.base_url}/api/workflows")
    assert {
        "id": "github-zen",
        "name": "GitHub Zen",
        "description": json.loads(GITHUB_ZEN.read_text())["description"],
        "nodes": 2,
        "connections": 1,
        "version": 1,
    } in listed


@pytest.mark.usefixtures("fresh_zen")
def test_python_example(server: RunningServer, zen_url: str) -> None:
    # The seed's `requests` calls, with httpx (same calls, plus the credentials).
    headers = server.auth
    with GITHUB_ZEN.open() as f:
        workflow = json.load(f)
    response = httpx.post(f"{server.base_url}/api/workflows", json=workflow, headers=headers)
    workflow_id = response.json()["id"]
    execution = httpx.post(
        f"{server.base_url}/api/workflows/{workflow_id}/execute",
        json={"inputs": {"url": {"type": "String", "value": zen_url}}},
        headers=headers,
    )
    result = execution.json()
    assert response.status_code == 200 and execution.status_code == 200
    assert f"Execution {result['execution_id']} completed"
    assert f"Nodes: {result['completed_nodes']}/{result['total_nodes']}" == "Nodes: 2/2"
    # The registered workflow reads back exactly as it was sent.
    got = httpx.get(f"{server.base_url}/api/workflows/{workflow_id}", headers=headers)
    assert got.json() == workflow


@pytest.mark.usefixtures("fresh_zen")
def test_javascript_example_event_stream(server: RunningServer, zen_url: str) -> None:
    """The JS example's socket handler, in Python: what it would log, in order."""
    logged: list[str] = []

    def on_message(data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind == "WorkflowStarted":
            logged.append(f"Workflow started: {data['workflow_id']}")
        elif kind == "NodeStarted":
            logged.append(f"Node started: {data['node_type']}")
        elif kind == "NodeCompleted":
            assert isinstance(data["duration_ms"], int)
            logged.append("Node completed")
        elif kind == "NodeEvent":
            if data["event"]["event_type"] == "Info":
                logged.append(f"Info: {data['event']['message']}")
        elif kind == "WorkflowCompleted":
            logged.append("Workflow completed! " + ("✓" if data["success"] else "✗"))

    with server.client() as client:
        client.post("/api/workflows", json=json.loads(GITHUB_ZEN.read_text())).raise_for_status()
        with connect(f"{server.ws_url}/api/events", additional_headers=server.auth) as ws:
            result = client.post(
                "/api/workflows/github-zen/execute",
                json={"inputs": {"url": {"type": "String", "value": zen_url}}},
            ).json()
            while True:
                data = json.loads(ws.recv(timeout=30))
                if data.get("execution_id") != result["execution_id"]:
                    continue
                assert data["timestamp"].endswith("Z")
                on_message(data)
                if data["type"] == "WorkflowCompleted":
                    break
    assert logged == [
        "Workflow started: github-zen",
        "Node started: http.request",
        f"Info: GET {zen_url}",
        "Node completed",
        "Node started: debug.log",
        f"Info: {ZEN}",
        "Node completed",
        "Workflow completed! ✓",
    ]
