"""The HTTP API in detail, against a real uvicorn server: versions, history, approvals,
OpenAPI, CORS, request ids, metrics and the body limit."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from api.conftest import MAX_BODY
from api.servers import ThreadServer


def setter(node_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "node_type": "transform.set",
        "config": {"values": {"type": "Json", "value": values}},
    }


def chain(workflow_id: str, *nodes: dict[str, Any], **fields: Any) -> dict[str, Any]:
    connections = [
        {"from_node": a["id"], "from_port": "value", "to_node": b["id"], "to_port": "value"}
        for a, b in itertools.pairwise(nodes)
    ]
    return {"id": workflow_id, "name": workflow_id, "nodes": list(nodes), **fields} | {
        "connections": connections
    }


def test_health_is_public(api_server: ThreadServer) -> None:
    response = httpx.get(f"{api_server.base_url}/health")
    assert response.json() == {"status": "healthy", "version": "0.1.0", "service": "flowengine"}


def test_versions(client: httpx.Client) -> None:
    assert client.post("/api/workflows", json=chain("api-v", setter("a", v=1))).json() == {
        "id": "api-v",
        "message": "Workflow created successfully",
        "version": 1,
    }
    updated = client.put("/api/workflows/api-v", json=chain("api-v", setter("a", v=2)))
    assert updated.json() == {
        "id": "api-v",
        "message": "Workflow updated successfully",
        "version": 2,
    }
    # The id may be left out of a PUT body; a different one is refused.
    no_id = chain("api-v", setter("a", v=3))
    del no_id["id"]
    assert client.put("/api/workflows/api-v", json=no_id).json()["version"] == 3
    mismatch = client.put("/api/workflows/api-v", json=chain("other", setter("a")))
    assert mismatch.status_code == 400 and "id" in mismatch.json()["error"]

    versions = client.get("/api/workflows/api-v/versions").json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert all(v["created_at"].endswith("Z") for v in versions)
    first = client.get("/api/workflows/api-v/versions/1")
    assert first.json() == chain("api-v", setter("a", v=1))
    assert first.headers["x-workflow-version"] == "1"
    latest = client.get("/api/workflows/api-v")
    assert latest.headers["x-workflow-version"] == "3"
    assert client.get("/api/workflows/api-v/versions/9").status_code == 404
    assert client.get("/api/workflows/api-v/versions/0").status_code == 400

    old = client.post("/api/workflows/api-v/execute?version=1", json={}).json()
    assert old["outputs"] == {"a": {"value": {"type": "Object", "value": {"v": _n(1)}}}}
    new = client.post("/api/workflows/api-v/execute", json={}).json()
    assert new["outputs"]["a"]["value"]["value"]["v"] == _n(3)
    detail = client.get(f"/api/executions/{old['execution_id']}").json()
    assert detail["workflow_version"] == 1
    summary = next(w for w in client.get("/api/workflows").json() if w["id"] == "api-v")
    assert summary == {
        "id": "api-v",
        "name": "api-v",
        "description": "",
        "nodes": 1,
        "connections": 0,
        "version": 3,
    }


def _n(value: float) -> dict[str, Any]:
    return {"type": "Number", "value": value}


def test_execution_history(client: httpx.Client) -> None:
    wf = chain("api-hist", setter("a", n=1), setter("b", m=2))
    assert client.post("/api/workflows", json=wf).status_code == 200
    ids = [
        client.post(
            "/api/workflows/api-hist/execute",
            json={"inputs": {"i": {"type": "Number", "value": i}}},
        ).json()["execution_id"]
        for i in range(3)
    ]
    page = client.get("/api/executions?workflow_id=api-hist&limit=2").json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [e["id"] for e in page["executions"]] == ids[::-1][:2]
    rest = client.get("/api/executions?workflow_id=api-hist&limit=2&offset=2").json()
    assert [e["id"] for e in rest["executions"]] == [ids[0]]
    assert client.get("/api/executions?workflow_id=api-hist&status=failed").json()["total"] == 0
    ok = client.get("/api/executions?workflow_id=api-hist&status=succeeded").json()
    assert ok["total"] == 3
    first = ok["executions"][-1]
    assert (
        client.get(
            "/api/executions", params={"workflow_id": "api-hist", "since": first["created_at"]}
        ).json()["total"]
        == 3
    )
    assert (
        client.get(
            "/api/executions", params={"workflow_id": "api-hist", "until": first["created_at"]}
        ).json()["total"]
        == 0
    )
    assert (
        client.get(
            "/api/executions", params={"workflow_id": "api-hist", "since": "4102444800"}
        ).json()["total"]
        == 0
    )

    detail = client.get(f"/api/executions/{ids[2]}").json()
    assert detail["status"] == "succeeded" and detail["trigger"] == "api"
    assert detail["inputs"] == {"i": _n(2)}
    assert detail["completed_nodes"] == detail["total_nodes"] == 2
    assert detail["started_at"] <= detail["finished_at"]
    runs = {run["node_id"]: run for run in detail["nodes"]}
    assert runs["b"]["node_type"] == "transform.set"
    assert runs["b"]["outputs"]["value"]["value"] == {"i": _n(2), "n": _n(1), "m": _n(2)}
    assert runs["b"]["error"] is None and runs["b"]["attempt"] == 1
    assert detail["outputs"] == {"b": runs["b"]["outputs"]}

    events = client.get(f"/api/executions/{ids[2]}/events").json()
    assert events["events"][0]["type"] == "WorkflowStarted"
    assert events["events"][-1]["type"] == "WorkflowCompleted"
    after = client.get(f"/api/executions/{ids[2]}/events?after_seq={events['last_seq'] - 1}")
    assert [e["seq"] for e in after.json()["events"]] == [events["last_seq"]]
    limited = client.get(f"/api/executions/{ids[2]}/events?limit=2").json()
    assert [e["seq"] for e in limited["events"]] == [1, 2] and limited["last_seq"] == 2


def test_approval_rejected_and_simulate(api_server: ThreadServer, client: httpx.Client) -> None:
    wf = chain(
        "api-gate",
        setter("a"),
        {"id": "gate", "node_type": "human.approval", "config": {"message": "ok?"}},
        setter("b"),
    )
    wf["connections"][1]["from_port"] = "approved"
    assert client.post("/api/workflows", json=wf).status_code == 200
    waiting = client.post("/api/workflows/api-gate/execute", json={})
    assert waiting.status_code == 202
    execution_id = waiting.json()["execution_id"]
    assert waiting.json()["status"] == "waiting"
    wrong_node = client.post(
        f"/api/executions/{execution_id}/approve", json={"node_id": "a", "approved": True}
    )
    assert wrong_node.status_code == 409
    bad = client.post(f"/api/executions/{execution_id}/approve", json={"node_id": "gate"})
    assert bad.status_code == 400 and "approved" in bad.json()["error"]
    url = f"{api_server.ws_url}/api/events?execution_id={execution_id}&after_seq=0"
    with connect(url, additional_headers=api_server.auth) as ws:
        rejected = client.post(
            f"/api/executions/{execution_id}/approve",
            json={"node_id": "gate", "approved": False, "comment": "no"},
        )
        assert rejected.status_code == 200
        while True:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "ApprovalResolved":
                assert message["approved"] is False and message["comment"] == "no"
            if message["type"] == "WorkflowCompleted":
                break
    detail = client.get(f"/api/executions/{execution_id}").json()
    runs = {run["node_id"]: run for run in detail["nodes"]}
    assert set(runs["gate"]["outputs"]) >= {"rejected"}
    assert runs["b"]["status"] == "skipped"

    http = {
        "id": "api-sim",
        "nodes": [
            {
                "id": "fetch",
                "node_type": "http.request",
                "config": {"url": "https://example.invalid/x", "pinned_output": {"status": 201}},
            }
        ],
    }
    assert client.post("/api/workflows", json=http).status_code == 200
    simulated = client.post("/api/workflows/api-sim/execute?simulate=true", json={}).json()
    assert simulated["outputs"]["fetch"]["status"] == _n(201)
    detail = client.get(f"/api/executions/{simulated['execution_id']}").json()
    assert detail["mode"] == "simulate"


def test_nodes_catalogue(client: httpx.Client) -> None:
    nodes = {entry["type"]: entry for entry in client.get("/api/nodes").json()}
    assert nodes["http.request"]["description"] == "Make HTTP requests"
    assert nodes["http.request"]["category"] == "http"
    assert nodes["debug.log"] == {
        "type": "debug.log",
        "description": "Log values for debugging",
        "category": "debug",
        "aliases": ["log"],
        "inputs": ["message"],
        "outputs": ["message"],
    }
    for seed_type in ("transform.json_parse", "transform.json_stringify", "time.delay"):
        assert seed_type in nodes


def test_openapi_describes_every_route(api_server: ThreadServer) -> None:
    document = httpx.get(f"{api_server.base_url}/openapi.json").json()
    paths = document["paths"]
    expected = {
        "/health": {"get"},
        "/metrics": {"get"},
        "/api/workflows": {"get", "post"},
        "/api/workflows/{workflow_id}": {"get", "put", "delete"},
        "/api/workflows/{workflow_id}/execute": {"post"},
        "/api/workflows/{workflow_id}/versions": {"get"},
        "/api/workflows/{workflow_id}/versions/{version}": {"get"},
        "/api/nodes": {"get"},
        "/api/executions": {"get"},
        "/api/executions/{execution_id}": {"get"},
        "/api/executions/{execution_id}/events": {"get"},
        "/api/executions/{execution_id}/cancel": {"post"},
        "/api/executions/{execution_id}/pause": {"post"},
        "/api/executions/{execution_id}/resume": {"post"},
        "/api/executions/{execution_id}/approve": {"post"},
        "/webhooks/{path}": {"post"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    schemas = document["components"]["schemas"]
    create = paths["/api/workflows"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FlowEngineWorkflow"}
    assert {"FlowEngineWorkflow", "WorkflowNode", "Connection", "ExecuteRequest"} <= set(schemas)
    assert set(create["responses"]) >= {"200", "400", "401", "409", "413", "429"}
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    execute = paths["/api/workflows/{workflow_id}/execute"]["post"]
    assert set(execute["responses"]) >= {"200", "202", "400", "404", "500"}
    assert "ApiKey" in document["components"]["securitySchemes"]
    assert httpx.get(f"{api_server.base_url}/docs").status_code == 200


def test_cors_and_request_ids(api_server: ThreadServer) -> None:
    preflight = httpx.options(
        f"{api_server.base_url}/api/workflows",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
    simple = httpx.get(f"{api_server.base_url}/health", headers={"Origin": "https://x.example"})
    assert simple.headers["access-control-allow-origin"] == "*"
    # Errors carry CORS headers too, so that a browser can read them.
    denied = httpx.get(f"{api_server.base_url}/api/nodes", headers={"Origin": "https://x.example"})
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "*"

    assert len(simple.headers["x-request-id"]) == 32
    mine = httpx.get(f"{api_server.base_url}/health", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    evil = httpx.get(f"{api_server.base_url}/health", headers={"X-Request-ID": "a b\tc"})
    assert evil.headers["x-request-id"] != "a b\tc"


def test_metrics(api_server: ThreadServer, client: httpx.Client) -> None:
    assert httpx.get(f"{api_server.base_url}/metrics").status_code == 401
    assert client.post("/api/workflows", json=chain("api-metrics", setter("a"))).status_code == 200
    assert client.post("/api/workflows/api-metrics/execute", json={}).status_code == 200
    with connect(f"{api_server.ws_url}/api/events", additional_headers=api_server.auth):
        text = client.get("/metrics").text
    assert "runnel_executions_started_total" in text
    assert 'runnel_executions_finished_total{status="succeeded"}' in text
    assert 'runnel_node_duration_seconds_count{node_type="transform.set"}' in text
    assert "runnel_queue_depth 0.0" in text
    assert 'runnel_open_sockets{dialect="flowengine"} 1.0' in text
    assert (
        'runnel_http_request_duration_seconds_count{method="POST",'
        'route="/api/workflows/{workflow_id}/execute",status="200"}'
    ) in text


def test_body_limit_while_streaming(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "api-big", "description": "'
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    response = client.post("/api/workflows", content=chunks())
    assert response.status_code == 413
    assert response.json() == {"error": f"Request body too large: the limit is {MAX_BODY} bytes"}
    assert client.get("/api/workflows/api-big").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/health", 405),
        ("PATCH", "/api/workflows", 405),
    ],
)
def test_unknown_routes_and_methods(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert path in response.json()["error"]


def test_typed_values_round_trip(client: httpx.Client) -> None:
    assert client.post("/api/workflows", json=chain("api-typed", setter("a"))).status_code == 200
    typed = {
        "type": "Object",
        "value": {
            "null": {"type": "Null"},
            "bool": {"type": "Bool", "value": True},
            "int": {"type": "Number", "value": 3},
            "float": {"type": "Number", "value": 2.5},
            "text": {"type": "String", "value": "héllo"},
            "bytes": {"type": "Bytes", "value": [0, 1, 255]},
            "list": {"type": "Array", "value": [{"type": "String", "value": "x"}]},
        },
    }
    result = client.post("/api/workflows/api-typed/execute", json={"inputs": {"value": typed}})
    assert result.status_code == 200, result.text
    assert result.json()["outputs"]["a"]["value"] == typed
    # Plain JSON is accepted where a typed value is expected (and taken as it is).
    plain = client.post(
        "/api/workflows/api-typed/execute", json={"inputs": {"value": {"n": 1}}}
    ).json()
    assert plain["outputs"]["a"]["value"] == {
        "type": "Object",
        "value": {"n": {"type": "Number", "value": 1}},
    }
    detail = client.get(f"/api/executions/{result.json()['execution_id']}").json()
    assert detail["inputs"] == {"value": typed}
