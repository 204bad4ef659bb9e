"""Crypto auth against a real gateway, with real keys: auto-registration on the profile
route, and each reason a signed request is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from e2e.flowork import Gateway, error_of, gateway_fixture
from flowork_keys import Wallet

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from gateway_fixture(tmp_path_factory, "flowork-auth")


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


def test_a_new_address_is_registered_on_the_profile_route(http: httpx.Client) -> None:
    wallet = Wallet()
    # Signed as the original GUI signs: unix seconds, checksummed address.
    message = wallet.message(at=time.time())
    first = http.get("/api/v1/auth/profile", headers=wallet.headers(message))
    assert first.status_code == 200, first.text
    profile = first.json()
    assert set(profile) == {"id", "username", "email", "address", "tier", "permissions"}
    assert profile["address"] == wallet.lower
    assert profile["email"] is None
    assert profile["username"].startswith("user_")
    assert profile["tier"] == "architect" and "engines:manage" in profile["permissions"]
    again = http.get("/api/v1/auth/profile", headers=wallet.headers())
    assert again.json() == profile


def test_the_owner_address_is_the_owner(http: httpx.Client, gateway: Gateway) -> None:
    profile = http.get("/api/v1/auth/profile", headers=gateway.owner.headers()).json()
    assert profile["address"] == gateway.owner.lower
    assert profile["username"] == "owner"
    assert "admin:kill_switch" in profile["permissions"]
    engines = http.get("/api/v1/user/engines", headers=gateway.owner.headers()).json()
    assert [(e["embedded"], e["status"]) for e in engines] == [(True, "online")]


def test_no_headers(http: httpx.Client) -> None:
    assert "Missing authentication headers" in error_of(http.get("/api/v1/auth/profile"), 401)
    wallet = Wallet()
    partial = {k: v for k, v in wallet.headers().items() if k != "X-Signature"}
    assert "Missing" in error_of(http.get("/api/v1/auth/profile", headers=partial), 401)


def test_a_bad_signature(http: httpx.Client) -> None:
    wallet = Wallet()
    headers = wallet.headers()
    headers["X-Signature"] = "0x" + "ab" * 65
    assert "signature" in error_of(http.get("/api/v1/auth/profile", headers=headers), 401)
    headers["X-Signature"] = "0x1234"
    assert "Malformed signature" in error_of(http.get("/api/v1/auth/profile", headers=headers), 401)


def test_another_address(http: httpx.Client) -> None:
    wallet, other = Wallet(), Wallet()
    # The message claims wallet's address but other signed it.
    message = wallet.message()
    forged = {**wallet.headers(message), "X-Signature": other.sign(message)}
    assert f"not made by {wallet.lower}" in error_of(
        http.get("/api/v1/auth/profile", headers=forged), 401
    )
    # other signs a message naming wallet's address, and claims to be other.
    swapped = {**other.headers(wallet.message()), "X-User-Address": other.address}
    assert "another address" in error_of(http.get("/api/v1/auth/profile", headers=swapped), 401)


def test_a_stale_message(http: httpx.Client) -> None:
    wallet = Wallet()
    old = wallet.headers(wallet.message(at=time.time() - 301))
    assert "Stale authentication signature" in error_of(
        http.get("/api/v1/auth/profile", headers=old), 401
    )
    future = wallet.headers(wallet.message(at=time.time() + 400))
    assert "Stale" in error_of(http.get("/api/v1/auth/profile", headers=future), 401)


def test_a_replayed_message(http: httpx.Client) -> None:
    wallet = Wallet()
    headers = wallet.headers()
    assert http.get("/api/v1/auth/profile", headers=headers).status_code == 200
    assert "Replayed" in error_of(http.get("/api/v1/auth/profile", headers=headers), 401)
    # On any route: the seen-set is the store's.
    assert "Replayed" in error_of(http.get("/api/v1/user/engines", headers=headers), 401)


def test_logout_register_and_login(http: httpx.Client) -> None:
    wallet = Wallet()
    logout = http.post("/api/v1/auth/logout", headers=wallet.headers())
    assert logout.status_code == 200 and logout.json()["status"] == "success"
    for route in ("/api/v1/auth/register", "/api/v1/auth/login"):
        assert "sign in with a signature" in error_of(http.post(route, json={}), 501)
    assert http.get("/api/v1/system/health").json()["status"] == "ok"
