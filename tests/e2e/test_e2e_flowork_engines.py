"""Engines against a real gateway: the whole lifecycle with token rotation, sharing and
revoking and what get-engine-auth-info says after each, the dashboard's claim flow, and
proxying to an engine the caller may not use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from e2e.flowork import SECRET, Gateway, error_of, gateway_fixture
from flowork_keys import Wallet

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from gateway_fixture(tmp_path_factory, "flowork-engines")


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def auth_info(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/api/v1/engine/get-engine-auth-info", headers={"X-Engine-Token": token})


def addresses(http: httpx.Client, token: str) -> list[str]:
    response = auth_info(http, token)
    assert response.status_code == 200, response.text
    listed: list[str] = response.json()["authorized_addresses"]
    return listed


def test_the_engine_lifecycle_with_token_rotation(http: httpx.Client) -> None:
    owner, other = Wallet(), Wallet()
    assert http.get("/api/v1/user/engines", headers=owner.headers()).json() == []
    created = http.post(
        "/api/v1/user/engines", json={"name": "Home server"}, headers=owner.headers()
    )
    assert created.status_code == 201, created.text
    engine: dict[str, Any] = created.json()
    assert set(engine) == {"id", "name", "status", "raw_token"}
    assert engine["raw_token"].startswith("dev_engine_") and len(engine["raw_token"]) == 43
    engine_id, token = engine["id"], engine["raw_token"]
    listed = http.get("/api/v1/user/engines", headers=owner.headers()).json()
    assert [(e["id"], e["name"], e["status"]) for e in listed] == [
        (engine_id, "Home server", "offline")
    ]
    # The token is never shown again.
    assert (
        "raw_token" not in listed[0]
        and token not in http.get("/api/v1/user/engines", headers=owner.headers()).text
    )
    assert addresses(http, token) == [owner.lower]

    # Names are validated.
    for bad in ("", "   ", "x" * 65, "new\nline", "<script>"):
        error_of(
            http.post("/api/v1/user/engines", json={"name": bad}, headers=owner.headers()), 400
        )
    renamed = http.put(
        f"/api/v1/user/engines/{engine_id}/update-name",
        json={"name": "Office server"},
        headers=owner.headers(),
    )
    assert renamed.status_code == 200 and "Office server" in renamed.json()["message"]
    error_of(
        http.put(
            f"/api/v1/user/engines/{engine_id}/update-name",
            json={"name": "bad/name"},
            headers=owner.headers(),
        ),
        400,
    )

    # Only the owner changes or deletes it.
    route = f"/api/v1/user/engines/{engine_id}"
    assert "Only the owner" in error_of(
        http.put(f"{route}/update-name", json={"name": "mine"}, headers=other.headers()), 403
    )
    error_of(http.post(f"{route}/reset-token", headers=other.headers()), 403)
    error_of(http.delete(route, headers=other.headers()), 403)
    error_of(http.delete("/api/v1/user/engines/no-such-engine", headers=owner.headers()), 404)

    # Rotation: the old token stops working at once.
    reset = http.post(f"{route}/reset-token", headers=owner.headers())
    assert reset.status_code == 200
    new_token = reset.json()["token"]
    assert reset.json()["engine_id"] == engine_id and new_token != token
    assert "Invalid engine token" in error_of(auth_info(http, token), 401)
    assert addresses(http, new_token) == [owner.lower]
    error_of(auth_info(http, "dev_engine_" + "0" * 32), 401)
    assert "Missing engine token" in error_of(http.get("/api/v1/engine/get-engine-auth-info"), 401)

    deleted = http.delete(route, headers=owner.headers())
    assert deleted.json() == {"message": "Engine deleted successfully"}
    error_of(auth_info(http, new_token), 401)
    assert http.get("/api/v1/user/engines", headers=owner.headers()).json() == []


def test_sharing_revoking_and_the_auth_list(http: httpx.Client) -> None:
    owner, friend, newcomer = Wallet(), Wallet(), Wallet()
    engine = http.post(
        "/api/v1/user/engines", json={"name": "Team engine"}, headers=owner.headers()
    ).json()
    engine_id, token = engine["id"], engine["raw_token"]
    shares = f"/api/v1/engines/{engine_id}/shares"

    # By username: the friend signed in before, so they have one.
    friend_profile = http.get("/api/v1/auth/profile", headers=friend.headers()).json()
    by_name = http.post(
        shares,
        json={"share_with_identifier": friend_profile["username"].upper()},
        headers=owner.headers(),
    )
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["shared_with"]["user_id"] == friend_profile["id"]
    assert addresses(http, token) == sorted([owner.lower, friend.lower])
    error_of(
        http.post(
            shares,
            json={"share_with_identifier": friend.address},
            headers=owner.headers(),
        ),
        409,
    )

    # By an address nobody has yet: an account is made, which its holder signs in to.
    by_address = http.post(
        shares, json={"share_with_identifier": newcomer.address}, headers=owner.headers()
    )
    assert by_address.status_code == 201
    newcomer_id = by_address.json()["shared_with"]["user_id"]
    assert by_address.json()["shared_with"]["public_address"] == newcomer.lower
    assert addresses(http, token) == sorted([owner.lower, friend.lower, newcomer.lower])
    newcomer_profile = http.get("/api/v1/auth/profile", headers=newcomer.headers()).json()
    assert newcomer_profile["id"] == newcomer_id
    shared = http.get("/api/v1/user/shared-engines", headers=newcomer.headers()).json()
    assert [(s["id"], s["owner"]["user_id"]) for s in shared] == [
        (engine_id, http.get("/api/v1/auth/profile", headers=owner.headers()).json()["id"])
    ]

    listed = http.get(shares, headers=owner.headers()).json()
    assert [s["user_id"] for s in listed] == [friend_profile["id"], newcomer_id]
    assert {"user_id", "username", "email", "public_address", "shared_at"} <= set(listed[0])
    # Only the owner sees or changes the shares.
    error_of(http.get(shares, headers=friend.headers()), 403)
    error_of(http.post(shares, json={"share_with_identifier": "x"}, headers=friend.headers()), 403)
    error_of(
        http.post(shares, json={"share_with_identifier": owner.address}, headers=owner.headers()),
        400,
    )
    error_of(
        http.post(shares, json={"share_with_identifier": "no_such_user"}, headers=owner.headers()),
        404,
    )

    # Revoking takes effect at once.
    revoked = http.delete(f"{shares}/{friend_profile['id']}", headers=owner.headers())
    assert revoked.json() == {"message": "Share revoked successfully."}
    assert addresses(http, token) == sorted([owner.lower, newcomer.lower])
    error_of(http.delete(f"{shares}/{friend_profile['id']}", headers=owner.headers()), 404)
    assert http.get("/api/v1/user/shared-engines", headers=friend.headers()).json() == []


def test_proxying_to_an_engine_the_caller_may_not_use(http: httpx.Client, gateway: Gateway) -> None:
    stranger, friend = Wallet(), Wallet()
    embedded = http.get("/api/v1/user/engines", headers=gateway.owner.headers()).json()[0]
    for header in ("X-Engine-Id", "X-Flowork-Engine-ID"):
        for route in ("/api/v1/presets", "/api/v1/variables", "/api/v1/dashboard/summary"):
            response = http.get(route, headers=stranger.headers(**{header: embedded["id"]}))
            assert "may not use engine" in error_of(response, 403)
    # Without an engine of their own and none named: 404 saying so.
    assert "You have no engine" in error_of(
        http.get("/api/v1/presets", headers=stranger.headers()), 404
    )
    error_of(http.get("/api/v1/presets", headers=stranger.headers(**{"X-Engine-Id": "nope"})), 404)
    # The owner reaches it (their own engine needs no header); once shared, so does a friend.
    summary = http.get("/api/v1/dashboard/summary", headers=gateway.owner.headers())
    assert summary.status_code == 200
    assert {"today", "this_week", "running_now", "success_rate", "average_duration_ms"} <= set(
        summary.json()
    )
    http.post(
        f"/api/v1/engines/{embedded['id']}/shares",
        json={"share_with_identifier": friend.address},
        headers=gateway.owner.headers(),
    ).raise_for_status()
    friend_view = http.get(
        "/api/v1/presets", headers=friend.headers(**{"X-Engine-Id": embedded["id"]})
    )
    assert friend_view.status_code == 200 and friend_view.json() == []


def test_the_claim_flow(http: httpx.Client) -> None:
    owner, other = Wallet(), Wallet()
    engine = http.post(
        "/api/v1/user/engines", json={"name": "Dashboard engine"}, headers=owner.headers()
    ).json()
    engine_id, old_token = engine["id"], engine["raw_token"]
    select = "/api/v1/user/engines/select-for-auth"
    error_of(
        http.post(
            select, json={"request_id": "req-1", "engine_id": engine_id}, headers=other.headers()
        ),
        403,
    )
    error_of(http.post(select, json={"engine_id": engine_id}, headers=owner.headers()), 400)
    selected = http.post(
        select, json={"request_id": "req-1", "engine_id": engine_id}, headers=owner.headers()
    )
    assert selected.status_code == 200 and selected.json()["status"] == "success"
    # The token was rotated at once.
    error_of(auth_info(http, old_token), 401)
    error_of(
        http.post(
            select, json={"request_id": "req-1", "engine_id": engine_id}, headers=owner.headers()
        ),
        409,
    )

    claim = "/api/v1/engine/claim-token?req_id=req-1"
    error_of(http.get(claim), 401)
    error_of(http.get(claim, headers={"X-API-Key": "wrong"}), 401)
    claimed = http.get(claim, headers={"X-API-Key": SECRET})
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["status"] == "success" and body["engine_id"] == engine_id
    assert addresses(http, body["token"]) == [owner.lower]
    # Once only.
    assert "No token is waiting" in error_of(http.get(claim, headers={"X-API-Key": SECRET}), 404)
    error_of(http.get("/api/v1/engine/claim-token", headers={"X-API-Key": SECRET}), 400)
    error_of(
        http.get("/api/v1/engine/claim-token?req_id=never", headers={"X-API-Key": SECRET}), 404
    )
