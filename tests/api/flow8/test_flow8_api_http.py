"""flow8 routes in the API's in-process server: they are mounted, documented, and speak
flow8's error format on their own paths only."""

from __future__ import annotations

import httpx

from api.servers import ThreadServer


def test_flow8_routes_are_documented(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/api-keys",
        "/api/auth/api-keys/{key_id}",
        "/api/flows",
        "/api/flows/{flow_id}",
        "/api/flows/{flow_id}/run",
        "/api/flows/{flow_id}/layers",
        "/api/flows/{flow_id}/layers/{layer_id}",
        "/api/plays",
        "/api/plays/{play_id}",
        "/api/plays/{play_id}/layers",
        "/api/plays/{play_id}/approve",
        "/api/groups",
        "/api/groups/{group_id}",
        "/api/kv",
        "/api/kv/{entry_id}",
        "/api/channels",
        "/api/channels/{channel_id}",
        "/api/channels/{channel_id}/test",
        "/api/schedules",
        "/api/schedules/{schedule_id}",
    ):
        assert path in paths, path


def test_each_dialect_keeps_its_error_format(api_server: ThreadServer) -> None:
    with httpx.Client(base_url=api_server.base_url) as anonymous:
        flow8 = anonymous.get("/api/flows").json()
        assert flow8["error"] == "UNAUTHORIZED" and flow8["statusCode"] == 401
        engine = anonymous.get("/api/workflows").json()
        assert set(engine) == {"error"}
        assert anonymous.get("/api/flowsy").json().keys() == {"error"}
        not_allowed = anonymous.patch("/api/flows")
        assert not_allowed.status_code == 405
        assert not_allowed.json()["error"] == "METHOD_NOT_ALLOWED"


def test_a_bearer_key_works_on_flow8_routes(client: httpx.Client) -> None:
    me = client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert me.json()["authMethod"] == "apiKey"
