"""Every error of the Flow Engine API, as ``{"error": "..."}`` with the right status, and
never a 500 for bad input."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from e2e.conftest import MAX_BODY
from e2e.harness import RunningServer
from e2e.workflows import document, node, setter
from runnel.services.accounts import AUTH_CACHE_SECONDS

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


# -- 401 ---------------------------------------------------------------------------------


def test_no_key_wrong_key_and_revoked_key(server: RunningServer, cli: Callable[..., Any]) -> None:
    url = f"{server.base_url}/api/workflows"
    assert "Missing API key" in error_of(httpx.get(url), 401)
    assert httpx.get(url).headers["www-authenticate"] == "Bearer"
    error_of(httpx.get(url, headers={"Authorization": "Bearer nonsense"}), 401)
    forged = server.token[:-4] + ("AAAA" if not server.token.endswith("AAAA") else "BBBB")
    error_of(httpx.get(url, headers={"Authorization": f"Bearer {forged}"}), 401)
    error_of(httpx.get(url, headers={"Authorization": f"Basic {server.token}"}), 401)
    # /health stays public.
    assert httpx.get(f"{server.base_url}/health").status_code == 200

    # Keys made and revoked with the command line while the server runs.
    data_dir = str(server.data_dir)
    made = cli("keys", "create", "e2e", "--json", "--data-dir", data_dir)
    assert made.exit_code == 0, made.stderr
    key = made.json()
    headers = {"Authorization": f"Bearer {key['token']}"}
    assert httpx.get(url, headers=headers).status_code == 200
    listed = cli("keys", "list", "--json", "--data-dir", data_dir)
    assert key["id"] in {k["id"] for k in listed.json()}

    revoked = cli("keys", "revoke", key["id"], "--data-dir", data_dir)
    assert revoked.exit_code == 0, revoked.stderr
    # Revoked by another process: the server trusts a key it verified for at most
    # AUTH_CACHE_SECONDS before it reads the store again.
    deadline = time.monotonic() + AUTH_CACHE_SECONDS + 2.0
    while (answer := httpx.get(url, headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.05)
    assert "revoked" in error_of(answer, 401)
    again = cli("keys", "revoke", key["id"], "--data-dir", data_dir)
    assert again.exit_code == 2 and "not found" in again.stderr


# -- 404, 409 -----------------------------------------------------------------------------


def test_not_found(client: httpx.Client) -> None:
    assert error_of(client.get("/api/workflows/nope"), 404) == "Workflow nope not found"
    assert error_of(client.delete("/api/workflows/nope"), 404) == "Workflow nope not found"
    assert error_of(client.post("/api/workflows/nope/execute", json={}), 404) == (
        "Workflow nope not found"
    )
    error_of(client.put("/api/workflows/nope", json=document("nope", [setter("a")])), 404)
    error_of(client.get("/api/workflows/nope/versions"), 404)
    error_of(client.get("/api/executions/nope"), 404)
    error_of(client.get("/api/executions/nope/events"), 404)
    error_of(client.post("/api/executions/nope/cancel"), 404)
    assert "GET /api/nothing" in error_of(client.get("/api/nothing"), 404)
    error_of(client.post("/webhooks/nothing-here", json={}), 404)


def test_conflict_and_deleted_workflow(client: httpx.Client) -> None:
    wf = document("e2e-conflict", [setter("a", n=1)])
    assert client.post("/api/workflows", json=wf).status_code == 200
    assert error_of(client.post("/api/workflows", json=wf), 409) == (
        "Workflow e2e-conflict already exists"
    )
    assert client.delete("/api/workflows/e2e-conflict").json() == {
        "message": "Workflow deleted successfully"
    }
    # Deleted means gone and no longer executable.
    error_of(client.get("/api/workflows/e2e-conflict"), 404)
    error_of(client.post("/api/workflows/e2e-conflict/execute", json={}), 404)
    assert "e2e-conflict" not in {w["id"] for w in client.get("/api/workflows").json()}


# -- 413 ---------------------------------------------------------------------------------


def test_body_over_the_limit(client: httpx.Client) -> None:
    big = b'{"id": "x", "description": "' + b"a" * MAX_BODY + b'"}'
    message = error_of(client.post("/api/workflows", content=big), 413)
    assert str(MAX_BODY) in message

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"inputs": {"x": "'
        for _ in range(MAX_BODY // 1000 + 1):
            yield b"b" * 1000
        yield b'"}}'

    wf = document("e2e-limit", [setter("a")])
    assert client.post("/api/workflows", json=wf).status_code == 200
    streamed = client.post("/api/workflows/e2e-limit/execute", content=chunks())
    error_of(streamed, 413)
    # Under the limit, chunked works.
    ok = client.post("/api/workflows/e2e-limit/execute", content=iter([b'{"inputs": ', b"{}}"]))
    assert ok.status_code == 200, ok.text


# -- 400 ---------------------------------------------------------------------------------


def test_bad_bodies_name_the_field_and_the_problem(client: httpx.Client) -> None:
    def bad(response: httpx.Response, *needles: str) -> None:
        message = error_of(response, 400)
        for needle in needles:
            assert needle in message, message

    bad(client.post("/api/workflows", content=b"{not json"), "not valid JSON")
    bad(client.post("/api/workflows", content=b""), "needs a JSON body")
    bad(client.post("/api/workflows", json=[1, 2]), "must be a JSON object", "an array")
    bad(client.post("/api/workflows", json="text"), "must be a JSON object")
    bad(client.post("/api/workflows", json={"name": "no id"}), "id", "required")
    bad(client.post("/api/workflows", json={"id": 5}), "id", "expected a string")
    bad(
        client.post("/api/workflows", json={"id": "x", "nodes": {"a": 1}}),
        "nodes",
        "expected an array",
    )
    bad(
        client.post("/api/workflows", json={"id": "x", "nodes": [{"id": "a"}]}),
        "nodes[0]",
        "node_type",
        "required",
    )
    bad(
        client.post("/api/workflows", json=document("x", [node("a", "transform.sett")])),
        "node 'a'",
        "transform.set",
    )
    bad(
        client.post(
            "/api/workflows",
            json=document("x", [node("a", "debug.log", level={"type": "Number", "value": "2"})]),
        ),
        "nodes[0].config.level",
        "Number expects a JSON number",
    )
    bad(
        client.post(
            "/api/workflows", json={**document("x", [setter("a")]), "settings": {"on_error": 1}}
        ),
        "settings.on_error",
    )
    wf = document("e2e-bad-input", [setter("a")])
    assert client.post("/api/workflows", json=wf).status_code == 200
    execute = "/api/workflows/e2e-bad-input/execute"
    bad(client.post(execute, json={"inputs": []}), "inputs", "valid dictionary")
    bad(client.post(execute, json={"inputs": "x"}), "inputs")
    bad(client.post(execute, json=[]), "valid dictionary")
    bad(client.post(execute, json={"inputs": {"n": {"type": "Bool", "value": 1}}}), "inputs.n")
    bad(
        client.post(execute, json={"inputs": {"b": {"type": "Bytes", "value": [300]}}}),
        "inputs.b",
        "Bytes",
    )
    bad(client.post(execute, content=b'{"inputs": {"a": NaN}}'), "not valid JSON")
    bad(client.post(f"{execute}?version=0"), "query parameter 'version'")
    bad(client.post(f"{execute}?wait=maybe"), "query parameter 'wait'")
    bad(client.get("/api/executions?limit=-1"), "query parameter 'limit'")
    bad(client.get("/api/executions?since=yesterday"), "query parameter 'since'")
    bad(client.get("/api/workflows/e2e-bad-input/versions/abc"), "path parameter 'version'")


GARBAGE: list[Any] = [
    b'{"inputs": {"value": ' + b"[" * 300 + b"]" * 300 + b"}}",
    b'{"id": "x", "nodes": [{"id": "a", "node_type": "transform.set", "config": {"v": '
    + b"[" * 200
    + b"]" * 200
    + b"}}]}",
    b"\x00\xff\xfe",
    b"[" * 5000,
    b'{"a": ' * 3000,
    b'"unterminated',
    b"1e999999",
    b"null",
    b"true",
    b"12345678901234567890123456789012345678901234567890",
    '{"id": "\ud800"}'.encode("utf-8", "surrogatepass"),
    b'{"id": "x", "nodes": [null, 1, "a", [], {}]}',
    b'{"id": "x", "connections": [{"from_node": 1}]}',
    b'{"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Webhook"}}]}',
    b'{"id": "x", "triggers": [{"id": "t", "trigger_type": {"type": "Mystery"}}]}',
    b'{"id": "x", "nodes": [{"id": "a", "node_type": "transform.set", "position": "here"}]}',
    b'{"id": "x", "nodes": [{"id": "a", "node_type": "x", "retry_policy": {"max_attempts": 1.5}}]}',
    b'{"id": "x", "settings": {"max_parallel_nodes": "ten"}}',
    b'{"inputs": {"a": {"type": "Mystery", "value": 1}}}',
    b'{"inputs": {"a": {"type": "Array", "value": [{"type": "Number", "value": "1"}]}}}',
    b'{"inputs": {"a": {"type": "Object", "value": 3}}}',
    b'{"inputs": {"a": {"type": "Null"}, "b": {"type": "Json", "value": {"deep": [1]}}}}',
]


@pytest.mark.parametrize("body", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_never_gives_a_500(client: httpx.Client, body: bytes) -> None:
    wf = document("e2e-garbage", [setter("a")])
    client.post("/api/workflows", json=wf)
    for method, path in (
        ("POST", "/api/workflows"),
        ("PUT", "/api/workflows/e2e-garbage"),
        ("POST", "/api/workflows/e2e-garbage/execute"),
        ("POST", "/api/executions/nope/approve"),
        ("POST", "/webhooks/none"),
    ):
        response = client.request(method, path, content=body)
        assert response.status_code < 500, (method, path, response.text)
        assert "error" in response.json() or response.status_code == 200
