"""The Flowork gateway over HTTP, with the server's platform at hand: OpenAPI, errors,
share-link enforcement on presets, the operators' kill switch, the engine events hook,
forwarding to a separate engine, and the public proxied content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.flowork.conftest import NEWS, SECRET
from api.flowork.engine_server import EngineServer
from api.servers import ThreadServer
from flowork_keys import Wallet, preset_signature
from runnel.auth.shared_secret import engine_api_key
from runnel.services.engine_events import (
    AuthListChanged,
    EngineEvent,
    EngineTokenReset,
    KillSwitchChanged,
)

FLOW = {"nodes": [{"id": "n1", "module_id": "debug_popup_module"}], "connections": []}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def new_engine(http: httpx.Client, wallet: Wallet, name: str = "engine") -> dict[str, Any]:
    response = http.post("/api/v1/user/engines", json={"name": name}, headers=wallet.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_openapi_lists_every_gateway_route(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    expected = {
        "/api/v1/auth/profile": {"get"},
        "/api/v1/auth/logout": {"post"},
        "/api/v1/auth/register": {"post"},
        "/api/v1/auth/login": {"post"},
        "/api/v1/auth/link-address": {"post"},
        "/api/v1/user/engines": {"get", "post"},
        "/api/v1/user/engines/{engine_id}": {"delete"},
        "/api/v1/user/engines/{engine_id}/reset-token": {"post"},
        "/api/v1/user/engines/{engine_id}/update-name": {"put"},
        "/api/v1/user/shared-engines": {"get"},
        "/api/v1/user/engines/select-for-auth": {"post"},
        "/api/v1/engines/{engine_id}/shares": {"get", "post"},
        "/api/v1/engines/{engine_id}/shares/{shared_user_id}": {"delete"},
        "/api/v1/workflows/{preset_name}/shares": {"get", "post"},
        "/api/v1/workflow-shares/{share_id}": {"put", "delete"},
        "/api/v1/workflow-shares/resolve/{share_token}": {"get"},
        "/api/v1/user/state/{key}": {"get", "put", "delete"},
        "/api/v1/system/health": {"get"},
        "/api/v1/engine/get-engine-auth-info": {"get"},
        "/api/v1/engine/claim-token": {"get"},
        "/api/v1/system/disabled-components": {"get"},
        "/api/v1/admin/disabled-components": {"get", "post", "put"},
        "/api/v1/admin/disabled-components/{component_id}": {"delete"},
        "/api/v1/localization/{lang_code}": {"get"},
        "/api/v1/news": {"get"},
        "/api/v1/components/{component_type}/{component_id}/icon": {"get"},
        "/api/v1/presets": {"get", "post"},
        "/api/v1/presets/{name}": {"get", "put", "delete"},
        "/api/v1/variables": {"get"},
        "/api/v1/variables/{name}": {"put", "delete"},
        "/api/v1/dashboard/summary": {"get"},
        "/api/v1/{path}": {"get", "post", "put", "patch", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    document = http.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert {"FloworkAddress", "FloworkSignedMessage", "FloworkSignature"} <= set(schemes)
    assert {"FloworkEngineToken", "FloworkGatewaySecret"} <= set(schemes)
    create = paths["/api/v1/user/engines"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/FloworkEngineCreate"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/user/engines", b"{not json"),
        ("POST", "/api/v1/user/engines", b"[1, 2]"),
        ("POST", "/api/v1/user/engines", b'{"name": 42}'),
        ("POST", "/api/v1/user/engines", b'{"name": "' + b"x" * 100 + b'"}'),
        ("POST", "/api/v1/user/engines", b""),
        ("POST", "/api/v1/engines/x/shares", b'{"share_with_identifier": []}'),
        ("POST", "/api/v1/workflows/p/shares", b'{"permission_level": "admin"}'),
        ("POST", "/api/v1/workflows/p/shares", b'{"permission_level": null}'),
        ("PUT", "/api/v1/user/state/favorite_presets", b'"not a list"'),
        ("PUT", "/api/v1/user/state/favorite_presets", b"[1, 2]"),
        ("PUT", "/api/v1/user/state/Bad-Key", b"[]"),
        ("POST", "/api/v1/user/engines/select-for-auth", b"{}"),
        ("POST", "/api/v1/presets", b'{"name": "p", "workflow_data": [], "signature": "0x"}'),
        ("POST", "/api/v1/presets", b'{"name": "", "workflow_data": {}, "signature": "0x"}'),
        ("PUT", "/api/v1/variables/lower", b'{"value": 1}'),
        ("PUT", "/api/v1/variables/OK", b'{"mode": "sometimes"}'),
    ],
)
def test_bad_input_is_a_400_never_a_500(
    http: httpx.Client, owner: Wallet, method: str, path: str, body: bytes
) -> None:
    headers = {**owner.headers(), "Content-Type": "application/json"}
    response = http.request(method, path, content=body, headers=headers)
    assert response.status_code in {400, 403, 404}, response.text
    error_of(response, response.status_code)


def test_unknown_routes_and_methods(http: httpx.Client, owner: Wallet) -> None:
    # Unauthenticated, any /api/v1 path asks for a signature first.
    assert "Missing authentication headers" in error_of(http.get("/api/v1/nothing/here"), 401)
    # Signed, it reaches the owner's (embedded) engine, which has no such route.
    assert "no route" in error_of(http.get("/api/v1/nothing/here", headers=owner.headers()), 404)


def test_share_links_are_enforced_on_presets(http: httpx.Client, owner: Wallet) -> None:
    saved = http.post(
        "/api/v1/presets",
        json={
            "name": "Shared flow",
            "workflow_data": FLOW,
            "signature": preset_signature(owner, FLOW),
        },
        headers=owner.headers(),
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 1
    guest = Wallet()
    # The guest has no engine: name the owner's embedded one.
    embedded = http.get("/api/v1/user/engines", headers=owner.headers()).json()[0]
    assert embedded["embedded"]

    def as_guest(token: str | None = None) -> dict[str, str]:
        extra = {"X-Engine-Id": embedded["id"]}
        if token:
            extra["X-Share-Token"] = token
        return guest.headers(**extra)

    # The guest may not use the owner's engine at all, link or not.
    error_of(http.get("/api/v1/presets", headers=as_guest()), 403)
    links = {
        level: http.post(
            "/api/v1/workflows/Shared flow/shares",
            json={"permission_level": level, "link_name": level},
            headers=owner.headers(),
        ).json()
        for level in ("view", "view-run", "view-edit-run")
    }
    # Shared with the guest: the engine is theirs to use, the owner's presets are not.
    http.post(
        f"/api/v1/engines/{embedded['id']}/shares",
        json={"share_with_identifier": guest.address},
        headers=owner.headers(),
    ).raise_for_status()
    url = f"/api/v1/presets/Shared flow?owner_id={owner.lower}"
    error_of(http.get(url, headers=as_guest()), 403)
    for level, link in links.items():
        loaded = http.get(url, headers=as_guest(link["share_token"]))
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["workflow_data"] == FLOW
        new_data = {**FLOW, "edited_by": level}
        save = http.put(
            url,
            json={"workflow_data": new_data, "signature": preset_signature(guest, new_data)},
            headers=as_guest(link["share_token"]),
        )
        if level == "view-edit-run":
            assert save.status_code == 200, save.text
            assert save.json()["author"] == guest.lower
            assert save.json()["owner"] == owner.lower
        else:
            assert "does not allow save" in error_of(save, 403)
    # Downgraded, the edit link stops saving at once; deleted, it stops loading.
    edit = links["view-edit-run"]
    http.put(
        f"/api/v1/workflow-shares/{edit['id']}",
        json={"permission_level": "view"},
        headers=owner.headers(),
    ).raise_for_status()
    error_of(
        http.put(
            url,
            json={"workflow_data": FLOW, "signature": preset_signature(guest, FLOW)},
            headers=as_guest(edit["share_token"]),
        ),
        403,
    )
    deleted = http.delete(f"/api/v1/workflow-shares/{edit['id']}", headers=owner.headers())
    assert deleted.json() == {"status": "success", "message": "Share link deleted."}
    error_of(http.get(url, headers=as_guest(edit["share_token"])), 404)
    # The owner's own load sees the guest's version.
    mine = http.get("/api/v1/presets/Shared flow", headers=owner.headers()).json()
    assert (mine["version"], mine["author"]) == (2, guest.lower)


def test_the_kill_switch_for_operators(
    http: httpx.Client, gateway: ThreadServer, owner: Wallet
) -> None:
    stranger = Wallet()
    url = "/api/v1/admin/disabled-components"
    assert "administrator" in error_of(
        http.post(url, json={"component_id": "x"}, headers=stranger.headers()), 403
    )
    error_of(http.post(url, json={"component_id": "x"}, headers={"X-API-Key": "wrong"}), 401)
    added = http.post(
        url,
        json={"component_id": "http.request", "reason": "egress freeze"},
        headers=owner.headers(),
    )
    assert added.status_code == 201, added.text
    assert added.json()["disabled_by"] not in (None, "gateway")
    by_secret = http.post(
        url, json={"component_id": "debug_popup_module"}, headers={"X-API-Key": SECRET}
    )
    assert by_secret.json()["disabled_by"] == "gateway"
    listed = http.get("/api/v1/system/disabled-components", headers={"X-API-Key": SECRET}).json()
    assert listed == ["debug_popup_module", "http.request"]
    assert gateway.platform is not None
    assert {"http.request", "debug.popup"} <= gateway.platform.node_services.disabled_types
    details = http.get(url, headers=owner.headers()).json()
    assert [(d["component_id"], d["reason"]) for d in details] == [
        ("debug_popup_module", None),
        ("http.request", "egress freeze"),
    ]
    error_of(http.delete(f"{url}/nope", headers=owner.headers()), 404)
    error_of(http.delete(f"{url}/bad id", headers=owner.headers()), 400)
    assert http.put(url, json=[], headers={"X-API-Key": SECRET}).json() == []
    assert "http.request" not in gateway.platform.node_services.disabled_types
    error_of(http.put(url, json={"not": "a list"}, headers={"X-API-Key": SECRET}), 400)


def test_engines_hear_of_changes(http: httpx.Client, gateway: ThreadServer) -> None:
    heard: list[EngineEvent] = []

    async def listen() -> Any:
        async def record(event: EngineEvent) -> None:
            heard.append(event)

        assert gateway.platform is not None
        return gateway.platform.flowork.events.listen(record)

    stop = gateway.run(listen())
    try:
        owner, friend = Wallet(), Wallet()
        engine = new_engine(http, owner)
        http.post(
            f"/api/v1/engines/{engine['id']}/shares",
            json={"share_with_identifier": friend.address},
            headers=owner.headers(),
        ).raise_for_status()
        http.post(f"/api/v1/user/engines/{engine['id']}/reset-token", headers=owner.headers())
        http.post(
            "/api/v1/admin/disabled-components",
            json={"component_id": "logic.if"},
            headers={"X-API-Key": SECRET},
        ).raise_for_status()
        http.delete("/api/v1/admin/disabled-components/logic.if", headers={"X-API-Key": SECRET})
    finally:
        gateway.call(stop)
    assert heard == [
        AuthListChanged(engine["id"]),
        EngineTokenReset(engine["id"]),
        KillSwitchChanged(("logic.if",)),
        KillSwitchChanged(()),
    ]


@pytest.fixture
def remote(
    http: httpx.Client, tmp_path: Path
) -> Iterator[tuple[Wallet, dict[str, Any], EngineServer]]:
    """An engine registered by a new user, served as a separate engine API (its own store)
    that expects the gateway's key for it."""
    owner = Wallet()
    engine = new_engine(http, owner, "remote")
    server = EngineServer(tmp_path / "engine.db", engine_api_key(SECRET, engine["id"])).start()
    try:
        yield owner, engine, server
    finally:
        server.stop()


def test_forwarding_to_a_separate_engine(
    http: httpx.Client,
    gateway: ThreadServer,
    remote: tuple[Wallet, dict[str, Any], EngineServer],
) -> None:
    owner, engine, remote_engine = remote
    friend, stranger = Wallet(), Wallet()
    # Not reported in yet: it cannot be reached.
    offline = http.get("/api/v1/variables", headers=owner.headers())
    assert "offline" in error_of(offline, 503)

    assert gateway.platform is not None
    flowork = gateway.platform.flowork
    gateway.run(flowork.engines.record_seen(engine["id"], remote_engine.url))
    put = http.put("/api/v1/variables/REGION", json={"value": "eu-west"}, headers=owner.headers())
    assert put.status_code == 200, put.text
    listed = http.get("/api/v1/variables", headers=owner.headers()).json()
    assert [(v["name"], v["value"]) for v in listed] == [("REGION", "eu-west")]
    # It went to the remote engine's store, not the gateway's.
    remote_vars = remote_engine.run(remote_engine.store.list_variables(owner.lower))
    assert [v.name for v in remote_vars] == ["REGION"]
    summary = http.get("/api/v1/dashboard/summary", headers=owner.headers()).json()
    assert summary["running_now"] == 0

    # Another user may not use it (403) until it is shared, and not after it is revoked.
    headers = {"X-Engine-Id": engine["id"]}
    assert "may not use engine" in error_of(
        http.get("/api/v1/variables", headers=stranger.headers(**headers)), 403
    )
    shared = http.post(
        f"/api/v1/engines/{engine['id']}/shares",
        json={"share_with_identifier": friend.address},
        headers=owner.headers(),
    )
    friend_id = shared.json()["shared_with"]["user_id"]
    # The original GUI's header works too; the friend sees their own (empty) variables.
    friend_view = http.get(
        "/api/v1/variables", headers=friend.headers(**{"X-Flowork-Engine-ID": engine["id"]})
    )
    assert friend_view.status_code == 200 and friend_view.json() == []
    http.delete(f"/api/v1/engines/{engine['id']}/shares/{friend_id}", headers=owner.headers())
    error_of(http.get("/api/v1/variables", headers=friend.headers(**headers)), 403)

    # An engine that stopped answering: 502.
    gateway.run(flowork.engines.record_seen(engine["id"], "http://127.0.0.1:9"))
    assert "cannot be reached" in error_of(
        http.get("/api/v1/variables", headers=owner.headers()), 502
    )


def test_the_engine_api_answers_its_gateway_only(
    remote: tuple[Wallet, dict[str, Any], EngineServer],
) -> None:
    _, engine, remote_engine = remote
    url = f"{remote_engine.url}/api/v1/variables"
    key = engine_api_key(SECRET, engine["id"])
    address = {"X-Flowork-User-Address": Wallet().lower}
    error_of(httpx.get(url, headers=address), 401)
    # Neither the gateway secret itself nor another engine's key opens it.
    for wrong in ("wrong", SECRET, engine_api_key(SECRET, "another-engine")):
        error_of(httpx.get(url, headers={**address, "X-API-Key": wrong}), 401)
    error_of(httpx.get(url, headers={"X-API-Key": key, "X-Flowork-User-Address": "me"}), 401)
    assert httpx.get(url, headers={**address, "X-API-Key": key}).json() == []


def test_public_content(http: httpx.Client) -> None:
    english = http.get("/api/v1/localization/en")
    assert english.status_code == 200 and english.json()["language_name"] == "English"
    indonesian = http.get("/api/v1/localization/id").json()
    assert indonesian["language_name"] == "Bahasa Indonesia"
    assert set(indonesian) == set(english.json())
    assert http.get("/api/v1/localization/en-US").json() == english.json()
    assert "available: en, id" in error_of(http.get("/api/v1/localization/xx"), 404)
    error_of(http.get("/api/v1/localization/not a code"), 404)
    assert http.get("/api/v1/news").json() == NEWS

    icon = http.get("/api/v1/components/modules/http.request/icon")
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg") and ">HR<" in icon.text
    alias = http.get("/api/v1/components/modules/debug_popup_module/icon").text
    assert alias == http.get("/api/v1/components/plugins/debug.popup/icon").text
    assert alias != icon.text
    unknown = http.get("/api/v1/components/modules/some_plugin_module/icon")
    assert unknown.status_code == 200 and ">?<" in unknown.text
    error_of(http.get("/api/v1/components/modules/bad%20id/icon"), 400)


def test_linking_an_address_to_an_api_key_user(
    http: httpx.Client, gateway: ThreadServer, owner: Wallet
) -> None:
    wallet = Wallet()
    token = gateway.token  # the owner's admin key; the owner already has an address
    linked = http.post(
        "/api/v1/auth/link-address",
        headers={"Authorization": f"Bearer {token}", **wallet.headers()},
    )
    assert "already has the address" in error_of(linked, 409)
    # An address cannot be linked without the key, nor the key without a signature.
    error_of(http.post("/api/v1/auth/link-address", headers=wallet.headers()), 401)
    error_of(
        http.post("/api/v1/auth/link-address", headers={"Authorization": f"Bearer {token}"}),
        401,
    )
    profile = http.get("/api/v1/auth/profile", headers=owner.headers()).json()
    assert profile["address"] == owner.lower
    assert "admin:kill_switch" in profile["permissions"]
