"""flow8 flows and flowlets against a real server: CRUD, versions, the chain underneath (also
seen through the Flow Engine API), pagination and error shapes of every list and route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from e2e.conftest import MAX_BODY
from e2e.flow8 import Person
from e2e.harness import RunningServer

pytestmark = pytest.mark.e2e

PAGE_KEYS = {"data", "total", "page", "size", "pages"}


def flowlet(ref: str, app_id: str = "set", **fields: Any) -> dict[str, Any]:
    return {"ref": ref, "appId": app_id, "args": fields.pop("args", {"values": {}}), **fields}


def make_flow(
    person: Person, name: str, *flowlets: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    answer = person.client.post(
        "/api/flows", json={"name": name, "flowlets": list(flowlets), **fields}
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def error_of(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == code
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_flow_crud_and_versions(flow8_people: dict[str, Person], server: RunningServer) -> None:
    alice = flow8_people["alice"].client
    retry = {
        "maxRetries": 2,
        "initialDelayMs": 10,
        "maxDelayMs": 100,
        "backoffMultiplier": 2,
        "jitter": 0.1,
    }
    sent = {
        "name": "Report",
        "category": "reports",
        "enabled": True,
        "flowlets": [
            flowlet(
                "fetch",
                "curl",
                args={"url": "https://example.com"},
                timeout=5000,
                retry=retry,
                onError="continue",
            ),
            flowlet(
                "shape",
                "transform.set",
                args={"values": {"n": "{{ $args.n }}"}},
                filters=[{"field": "{{ $args.n }}", "operator": "gt", "value": 0}],
                deferAfterMs=100,
                needsApproval=True,
                skipOutputMapping=True,
            ),
        ],
    }
    created = alice.post("/api/flows", json=sent)
    assert created.status_code == 201
    flow = created.json()
    assert flow["version"] == 1 and flow["category"] == "reports" and flow["chain"] is True
    got = alice.get(f"/api/flows/{flow['id']}").json()
    assert got == flow
    for given, back in zip(sent["flowlets"], got["flowlets"], strict=True):
        assert back["id"]
        for name, value in given.items():
            assert back[name] == value, name
    # A flow is a workflow underneath: a chain, readable through the Flow Engine API.
    admin = httpx.get(f"{server.base_url}/api/workflows/{flow['id']}", headers=server.auth)
    assert admin.status_code == 200
    workflow = admin.json()
    assert [n["node_type"] for n in workflow["nodes"]] == ["http.request", "transform.set"]
    assert [(c["from_node"], c["to_node"]) for c in workflow["connections"]] == [
        (got["flowlets"][0]["id"], got["flowlets"][1]["id"]),
        (got["flowlets"][0]["id"], got["flowlets"][1]["id"]),  # onError continue goes on
    ]
    # PUT changes what it names; each save is a new version.
    updated = alice.put(f"/api/flows/{flow['id']}", json={"enabled": False})
    assert updated.status_code == 200
    assert updated.json()["enabled"] is False and updated.json()["version"] == 2
    assert updated.json()["flowlets"] == got["flowlets"]
    disabled = alice.post(f"/api/flows/{flow['id']}/run", json={})
    error_of(disabled, 409, "FLOW_DISABLED")
    versions = httpx.get(
        f"{server.base_url}/api/workflows/{flow['id']}/versions", headers=server.auth
    ).json()
    assert [v["version"] for v in versions] == [1, 2]
    assert alice.delete(f"/api/flows/{flow['id']}").status_code == 200
    error_of(alice.get(f"/api/flows/{flow['id']}"), 404, "FLOW_NOT_FOUND")


def test_layers_crud(flow8_people: dict[str, Person]) -> None:
    alice = flow8_people["alice"].client
    flow = make_flow(flow8_people["alice"], "Layers", flowlet("a"), flowlet("c"))
    base = f"/api/flows/{flow['id']}/layers"
    added = alice.post(base, json={**flowlet("b", "log", args={"message": "hi"}), "position": 1})
    assert added.status_code == 201
    layer = added.json()
    listed = alice.get(base).json()
    assert set(listed) == PAGE_KEYS and listed["total"] == 3
    assert [f["ref"] for f in listed["data"]] == ["a", "b", "c"]
    changed = alice.put(f"{base}/{layer['id']}", json={"args": {"message": "changed"}})
    assert changed.status_code == 200
    assert changed.json() == {**layer, "args": {"message": "changed"}}
    assert alice.get(f"/api/flows/{flow['id']}").json()["version"] == 3
    assert alice.delete(f"{base}/{layer['id']}").status_code == 200
    assert [f["ref"] for f in alice.get(base).json()["data"]] == ["a", "c"]
    error_of(alice.put(f"{base}/{layer['id']}", json={}), 404, "LAYER_NOT_FOUND")
    error_of(alice.delete(f"{base}/nope"), 404, "LAYER_NOT_FOUND")
    page = alice.get(base, params={"page": 1, "size": 1}).json()
    assert page == {**page, "total": 2, "page": 1, "size": 1, "pages": 2}
    assert [f["ref"] for f in page["data"]] == ["c"]


def test_unknown_app_ids_and_bad_flowlets_are_400_listing_what_is_known(
    flow8_people: dict[str, Person],
) -> None:
    alice = flow8_people["alice"].client
    answer = alice.post(
        "/api/flows", json={"name": "Bad", "flowlets": [flowlet("a", "no.such.thing")]}
    )
    body = error_of(answer, 400, "VALIDATION_ERROR")
    assert "no.such.thing" in body["message"]
    assert "curl" in body["message"] and "http.request" in body["message"]
    assert body["details"][0]["field"] == "flowlets[0].appId"
    duplicate = alice.post(
        "/api/flows", json={"name": "Dup", "flowlets": [flowlet("a"), flowlet("a")]}
    )
    assert "used twice" in error_of(duplicate, 400, "VALIDATION_ERROR")["message"]
    typo = alice.post(
        "/api/flows", json={"name": "T", "flowlets": [{**flowlet("a"), "needApproval": True}]}
    )
    assert "needApproval" in error_of(typo, 400, "VALIDATION_ERROR")["message"]
    bad_config = alice.post(
        "/api/flows",
        json={"name": "C", "flowlets": [flowlet("a", "delay", args={"delay_ms": "x"})]},
    )
    assert "flowlet 'a'" in error_of(bad_config, 400, "VALIDATION_ERROR")["message"]
    first_only = alice.post(
        "/api/flows",
        json={"name": "S", "flowlets": [flowlet("a"), flowlet("b", "static", args={})]},
    )
    assert "first flowlet" in error_of(first_only, 400, "VALIDATION_ERROR")["message"]
    error_of(alice.post("/api/flows", content=b"{not json"), 400, "VALIDATION_ERROR")
    error_of(alice.post("/api/flows", json=[1, 2]), 400, "VALIDATION_ERROR")
    too_big = alice.post("/api/flows", content=b"x" * (MAX_BODY + 1))
    error_of(too_big, 413, "PAYLOAD_TOO_LARGE")


def test_flow_engine_workflows_show_as_flows(
    flow8_people: dict[str, Person], server: RunningServer
) -> None:
    workflow = {
        "id": "fe-graph-for-flow8",
        "name": "graph",
        "nodes": [
            {"id": "a", "node_type": "transform.set", "config": {}},
            {"id": "b", "node_type": "transform.set", "config": {}},
            {"id": "c", "node_type": "debug.log", "config": {}},
        ],
        "connections": [
            {"from_node": "a", "from_port": "value", "to_node": "c", "to_port": "message"},
            {"from_node": "b", "from_port": "value", "to_node": "c", "to_port": "message"},
        ],
    }
    owner = httpx.Client(base_url=server.base_url, headers=server.auth)
    with owner:
        assert owner.post("/api/workflows", json=workflow).status_code == 200
        flow = owner.get("/api/flows/fe-graph-for-flow8").json()
        assert [f["appId"] for f in flow["flowlets"]] == ["transform.set"] * 2 + ["debug.log"]
        assert flow["chain"] is False
        refused = owner.post("/api/flows/fe-graph-for-flow8/layers", json=flowlet("x"))
        error_of(refused, 409, "CONFLICT")
    # Unowned workflows (made through the Flow Engine API) are the admins'.
    error_of(
        flow8_people["alice"].client.get("/api/flows/fe-graph-for-flow8"), 404, "FLOW_NOT_FOUND"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/flows",
        "/api/plays",
        "/api/groups",
        "/api/kv",
        "/api/channels",
        "/api/schedules",
        "/api/auth/api-keys",
    ],
)
def test_every_list_is_paginated(flow8_people: dict[str, Person], path: str) -> None:
    alice = flow8_people["alice"].client
    page = alice.get(path).json()
    assert set(page) == PAGE_KEYS
    assert (page["page"], page["size"]) == (0, 25)
    assert page["pages"] == -(-page["total"] // 25)
    capped = alice.get(path, params={"page": 0, "size": 1000}).json()
    assert capped["size"] == 100
    error_of(alice.get(path, params={"page": -1}), 400, "VALIDATION_ERROR")
    error_of(alice.get(path, params={"size": 0}), 400, "VALIDATION_ERROR")
    error_of(alice.get(path, params={"page": "first"}), 400, "VALIDATION_ERROR")
    error_of(httpx.get(str(alice.base_url.join(path))), 401, "UNAUTHORIZED")


# Every route of the seed's endpoint index that names a resource, with an unknown id.
ROUTES = [
    ("GET", "/api/flows/{x}", None, "FLOW_NOT_FOUND"),
    ("PUT", "/api/flows/{x}", {"name": "n"}, "FLOW_NOT_FOUND"),
    ("DELETE", "/api/flows/{x}", None, "FLOW_NOT_FOUND"),
    ("POST", "/api/flows/{x}/run", {"args": {}}, "FLOW_NOT_FOUND"),
    ("GET", "/api/flows/{x}/layers", None, "FLOW_NOT_FOUND"),
    ("POST", "/api/flows/{x}/layers", {"ref": "a", "appId": "set"}, "FLOW_NOT_FOUND"),
    ("PUT", "/api/flows/{x}/layers/{x}", {}, "FLOW_NOT_FOUND"),
    ("DELETE", "/api/flows/{x}/layers/{x}", None, "FLOW_NOT_FOUND"),
    ("GET", "/api/plays/{x}", None, "PLAY_NOT_FOUND"),
    ("GET", "/api/plays/{x}/layers", None, "PLAY_NOT_FOUND"),
    ("POST", "/api/plays/{x}/approve", {"ref": "a", "approved": True}, "PLAY_NOT_FOUND"),
    ("DELETE", "/api/plays/{x}", None, "PLAY_NOT_FOUND"),
    ("PUT", "/api/groups/{x}", {"name": "g"}, "GROUP_NOT_FOUND"),
    ("DELETE", "/api/groups/{x}", None, "GROUP_NOT_FOUND"),
    ("DELETE", "/api/kv/{x}", None, "KV_ENTRY_NOT_FOUND"),
    ("GET", "/api/channels/{x}", None, "CHANNEL_NOT_FOUND"),
    ("PUT", "/api/channels/{x}", {"name": "c"}, "CHANNEL_NOT_FOUND"),
    ("DELETE", "/api/channels/{x}", None, "CHANNEL_NOT_FOUND"),
    ("POST", "/api/channels/{x}/test", None, "CHANNEL_NOT_FOUND"),
    ("PUT", "/api/schedules/{x}", {"cron": "* * * * *"}, "SCHEDULE_NOT_FOUND"),
    ("DELETE", "/api/schedules/{x}", None, "SCHEDULE_NOT_FOUND"),
    ("DELETE", "/api/auth/api-keys/{x}", None, "API_KEY_NOT_FOUND"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), ROUTES)
def test_unknown_ids_answer_the_resource_not_found_code(
    flow8_people: dict[str, Person], method: str, path: str, body: Any, code: str
) -> None:
    client = flow8_people["alice"].client
    answer = client.request(method, path.format(x="65abc123"), json=body)
    found = error_of(answer, 404, code)
    assert "65abc123" in found["message"]
    error_of(
        httpx.request(method, str(client.base_url.join(path.format(x="1")))), 401, "UNAUTHORIZED"
    )
