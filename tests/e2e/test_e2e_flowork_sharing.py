"""Workflow share links at each permission level, favorites and other user state, the
gateway-secret routes with and without a secret, and the kill switch stopping a component
in a real execution."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from e2e.flowork import SECRET, Gateway, error_of, gateway_fixture
from e2e.workflows import document, node
from flowork_keys import Wallet, preset_signature

pytestmark = pytest.mark.e2e

FLOW = {
    "nodes": [{"id": "a", "name": "Popup", "x": 0, "y": 0, "module_id": "debug_popup_module"}],
    "connections": [],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from gateway_fixture(tmp_path_factory, "flowork-sharing")


@pytest.fixture(scope="module")
def closed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway started without GATEWAY_SECRET_TOKEN."""
    yield from gateway_fixture(tmp_path_factory, "flowork-closed", secret=None)


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def test_share_links_at_each_level(http: httpx.Client, gateway: Gateway) -> None:
    owner = gateway.owner
    saved = http.post(
        "/api/v1/presets",
        json={"name": "Nightly", "workflow_data": FLOW, "signature": preset_signature(owner, FLOW)},
        headers=owner.headers(),
    )
    assert saved.status_code == 201, saved.text
    shares = "/api/v1/workflows/Nightly/shares"
    made = {}
    for level in ("view", "view-run", "view-edit-run"):
        response = http.post(
            shares,
            json={"permission_level": level, "link_name": f"{level} link"},
            headers=owner.headers(),
        )
        assert response.status_code == 201, response.text
        link = response.json()
        assert {"id", "share_token", "permission_level", "link_name", "created_at"} <= set(link)
        assert link["permission_level"] == level
        # At least 128 bits: 32 URL-safe characters carry 192.
        assert len(link["share_token"]) >= 22
        made[level] = link
    listed = http.get(shares, headers=owner.headers()).json()
    assert [x["id"] for x in listed] == [made[level]["id"] for level in reversed(list(made))]
    # Another user sees no links of theirs for that name.
    assert http.get(shares, headers=Wallet().headers()).json() == []

    # Public resolve: what the token grants, now.
    for level, link in made.items():
        resolved = httpx.get(f"{gateway.url}/api/v1/workflow-shares/resolve/{link['share_token']}")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["workflow_name"] == "Nightly"
        assert resolved.json()["owner"] == owner.lower
        assert resolved.json()["permission_level"] == level
    error_of(httpx.get(f"{gateway.url}/api/v1/workflow-shares/resolve/not-a-token"), 404)

    # What each level lets a holder do with the preset, on the owner's engine.
    guest = Wallet()
    embedded = http.get("/api/v1/user/engines", headers=owner.headers()).json()[0]
    http.post(
        f"/api/v1/engines/{embedded['id']}/shares",
        json={"share_with_identifier": guest.address},
        headers=owner.headers(),
    ).raise_for_status()
    url = f"/api/v1/presets/Nightly?owner_id={owner.lower}"
    for level, link in made.items():
        extra = {"X-Engine-Id": embedded["id"], "X-Share-Token": link["share_token"]}
        assert http.get(url, headers=guest.headers(**extra)).status_code == 200
        edit = {**FLOW, "by": level}
        saved_by_guest = http.put(
            url,
            json={"workflow_data": edit, "signature": preset_signature(guest, edit)},
            headers=guest.headers(**extra),
        )
        assert saved_by_guest.status_code == (200 if level == "view-edit-run" else 403), level

    # Downgrade and delete take effect at once.
    edit_link = made["view-edit-run"]
    updated = http.put(
        f"/api/v1/workflow-shares/{edit_link['id']}",
        json={"permission_level": "view-run"},
        headers=owner.headers(),
    )
    assert updated.json()["permission_level"] == "view-run"
    resolved = httpx.get(f"{gateway.url}/api/v1/workflow-shares/resolve/{edit_link['share_token']}")
    assert resolved.json()["permission_level"] == "view-run"
    error_of(
        http.put(
            f"/api/v1/workflow-shares/{edit_link['id']}",
            json={"permission_level": "owner"},
            headers=owner.headers(),
        ),
        400,
    )
    error_of(
        http.put(
            f"/api/v1/workflow-shares/{edit_link['id']}",
            json={"permission_level": "view"},
            headers=guest.headers(),
        ),
        404,
    )
    error_of(
        http.delete(f"/api/v1/workflow-shares/{edit_link['id']}", headers=guest.headers()), 404
    )
    deleted = http.delete(f"/api/v1/workflow-shares/{edit_link['id']}", headers=owner.headers())
    assert deleted.json()["status"] == "success"
    error_of(
        httpx.get(f"{gateway.url}/api/v1/workflow-shares/resolve/{edit_link['share_token']}"),
        404,
    )


def test_favorites_and_other_state(http: httpx.Client) -> None:
    wallet = Wallet()
    route = "/api/v1/user/state/favorite_presets"
    assert http.get(route, headers=wallet.headers()).json() == []
    put = http.put(route, json=["Nightly", "Backup", "Nightly"], headers=wallet.headers())
    assert put.status_code == 200 and put.json() == ["Nightly", "Backup"]
    assert http.get(route, headers=wallet.headers()).json() == ["Nightly", "Backup"]
    # Someone else's favorites are their own.
    assert http.get(route, headers=Wallet().headers()).json() == []
    for bad in ({"a": 1}, "Nightly", [1], [""], ["x" * 300], ["a"] * 501):
        error_of(http.put(route, json=bad, headers=wallet.headers()), 400)
    error_of(http.put(route, content=b"{oops", headers=wallet.headers()), 400)
    assert http.get(route, headers=wallet.headers()).json() == ["Nightly", "Backup"]
    # Any other key keeps any JSON.
    other = "/api/v1/user/state/favorite_components"
    assert http.put(other, json=["http.request"], headers=wallet.headers()).json() == [
        "http.request"
    ]
    layout = "/api/v1/user/state/canvas_layout"
    error_of(http.get(layout, headers=wallet.headers()), 404)
    assert http.put(layout, json={"zoom": 2}, headers=wallet.headers()).json() == {"zoom": 2}
    assert http.delete(layout, headers=wallet.headers()).status_code == 200
    error_of(http.get("/api/v1/user/state/Not-A-Key", headers=wallet.headers()), 400)
    error_of(http.get(route), 401)


def test_gateway_secret_routes_with_and_without_a_secret(
    http: httpx.Client, gateway: Gateway, closed_gateway: Gateway
) -> None:
    routes = ("/api/v1/system/disabled-components", "/api/v1/engine/claim-token?req_id=r")
    for route in routes:
        assert "X-API-Key" in error_of(http.get(route), 401)
        assert "Invalid gateway secret" in error_of(
            http.get(route, headers={"X-API-Key": SECRET + "x"}), 401
        )
    listed = http.get(routes[0], headers={"X-API-Key": SECRET})
    assert listed.status_code == 200 and isinstance(listed.json(), list)

    with closed_gateway.client() as closed:
        for route in routes:
            for headers in ({}, {"X-API-Key": SECRET}, {"X-API-Key": ""}):
                assert "closed" in error_of(closed.get(route, headers=headers), 403)
        # Without a secret, the operators still edit the kill switch with their signature.
        owner = closed_gateway.owner
        added = closed.post(
            "/api/v1/admin/disabled-components",
            json={"component_id": "time.delay"},
            headers=owner.headers(),
        )
        assert added.status_code == 201, added.text
        error_of(
            closed.post(
                "/api/v1/admin/disabled-components",
                json={"component_id": "time.delay"},
                headers={"X-API-Key": SECRET},
            ),
            403,
        )
        assert closed.get("/api/v1/system/health").status_code == 200


def test_a_disabled_component_cannot_run(http: httpx.Client, gateway: Gateway) -> None:
    owner = gateway.owner
    api = gateway.server.client()
    workflow = document("kill-switch", [node("log", "debug.log", message="hello")])
    assert api.post("/api/workflows", json=workflow).status_code == 200
    assert api.post("/api/workflows/kill-switch/execute", json={}).status_code == 200

    added = http.post(
        "/api/v1/admin/disabled-components",
        json={"component_id": "debug.log", "reason": "noisy"},
        headers=owner.headers(),
    )
    assert added.status_code == 201, added.text
    assert (
        "debug.log"
        in http.get("/api/v1/system/disabled-components", headers={"X-API-Key": SECRET}).json()
    )
    failed = api.post("/api/workflows/kill-switch/execute", json={})
    assert failed.status_code == 500
    assert "component 'debug.log' is disabled by the operator" in failed.json()["error"]

    # Only operators change the list.
    error_of(
        http.delete("/api/v1/admin/disabled-components/debug.log", headers=Wallet().headers()),
        403,
    )
    enabled = http.delete("/api/v1/admin/disabled-components/debug.log", headers=owner.headers())
    assert enabled.status_code == 200
    assert api.post("/api/workflows/kill-switch/execute", json={}).status_code == 200
    api.close()
