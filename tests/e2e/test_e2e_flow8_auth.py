"""flow8 sign-in against a real server: the session cookie, logout, rotation, the Origin
check, slowing and refusing password guessing, API keys and their revocation, and one key
system for every dialect."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e.flow8 import PASSWORD, Person, new_person
from e2e.harness import RunningServer, start_server

pytestmark = pytest.mark.e2e

MAX_FAILURES = 4


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("flow8-auth") / "data"
    running = start_server(
        data_dir,
        env={
            "RUNNEL_RATE_LIMIT_PER_SECOND": "0",
            "RUNNEL_LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        },
    )
    try:
        yield running
    finally:
        assert running.stop() == 0, running.log()


@pytest.fixture(scope="module")
def user(auth_server: RunningServer) -> Iterator[Person]:
    person = new_person(auth_server, "signin")
    try:
        yield person
    finally:
        person.close()


def test_login_sets_a_server_side_session_cookie(auth_server: RunningServer, user: Person) -> None:
    with httpx.Client(base_url=auth_server.base_url) as browser:
        answer = browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        assert answer.status_code == 200
        assert answer.json()["user"]["email"] == user.email
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("runnel_session=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/"} <= attributes
        assert "secure" not in attributes  # plain http here; set behind https
        me = browser.get("/api/auth/me").json()
        assert me["id"] == user.id and me["authMethod"] == "session"
        assert me["role"] == "member"
        # The same session works on the Flow Engine routes (one credential system).
        assert browser.get("/api/workflows").status_code == 200
        # Logging out ends it on the server: the old cookie value stops working.
        value = browser.cookies["runnel_session"]
        assert browser.post("/api/auth/logout").json() == {"message": "Logged out"}
    with httpx.Client(base_url=auth_server.base_url, cookies={"runnel_session": value}) as replay:
        refused = replay.get("/api/auth/me")
        assert refused.status_code == 401
        assert refused.json()["error"] == "UNAUTHORIZED"
        assert refused.json()["statusCode"] == 401


def test_login_rotates_the_session(auth_server: RunningServer, user: Person) -> None:
    with httpx.Client(base_url=auth_server.base_url) as browser:
        browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        first = browser.cookies["runnel_session"]
        browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        second = browser.cookies["runnel_session"]
        assert first != second
        assert browser.get("/api/auth/me").status_code == 200
    stale = httpx.get(f"{auth_server.base_url}/api/auth/me", cookies={"runnel_session": first})
    assert stale.status_code == 401


def test_cookie_requests_from_another_site_are_refused(
    auth_server: RunningServer, user: Person
) -> None:
    with httpx.Client(base_url=auth_server.base_url) as browser:
        browser.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        evil = {"Origin": "https://evil.example"}
        refused = browser.post("/api/flows", json={"name": "x"}, headers=evil)
        assert refused.status_code == 403
        assert refused.json()["error"] == "FORBIDDEN"
        # Reads are not state changes; the server's own origin is fine.
        assert browser.get("/api/flows", headers=evil).status_code == 200
        own = {"Origin": auth_server.base_url}
        made = browser.post("/api/flows", json={"name": "from the UI"}, headers=own)
        assert made.status_code == 201
        # A login from another site is refused too (login CSRF).
        assert (
            browser.post(
                "/api/auth/login",
                json={"email": user.email, "password": PASSWORD},
                headers=evil,
            ).status_code
            == 403
        )


def test_failed_logins_are_slowed_and_then_refused(auth_server: RunningServer) -> None:
    email = "nobody-guessing@example.com"
    with httpx.Client(base_url=auth_server.base_url, timeout=60) as browser:
        timings = []
        for _ in range(MAX_FAILURES):
            started = time.monotonic()
            wrong = browser.post("/api/auth/login", json={"email": email, "password": "guess1234"})
            timings.append(time.monotonic() - started)
            assert wrong.status_code == 401
            assert wrong.json() == {
                "error": "UNAUTHORIZED",
                "message": "Wrong email or password",
                "statusCode": 401,
            }
        refused = browser.post("/api/auth/login", json={"email": email, "password": "guess1234"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "TOO_MANY_REQUESTS"
    assert int(refused.headers["Retry-After"]) > 0
    # The attempt after the free ones waited (0.25 s), the first ones did not.
    assert timings[-1] >= 0.2


def test_api_keys_are_shown_once_listed_without_secrets_and_revoked_at_once(
    auth_server: RunningServer, user: Person
) -> None:
    made = user.browser.post(
        "/api/auth/api-keys", json={"name": "ci", "expiresAt": "2999-01-01T00:00:00Z"}
    )
    assert made.status_code == 201
    key = made.json()
    assert key["key"].startswith("eyJ")
    assert key["expiresAt"] == "2999-01-01T00:00:00.000Z"
    with httpx.Client(
        base_url=auth_server.base_url, headers={"Authorization": f"Bearer {key['key']}"}
    ) as client:
        assert client.get("/api/auth/me").json()["authMethod"] == "apiKey"
        # flow8 keys work on the Flow Engine routes too.
        assert client.get("/api/workflows").status_code == 200
        listed = client.get("/api/auth/api-keys").json()
        assert set(listed) == {"data", "total", "page", "size", "pages"}
        entry = next(k for k in listed["data"] if k["id"] == key["id"])
        assert set(entry) == {"id", "name", "prefix", "createdAt", "lastUsedAt", "expiresAt"}
        assert key["key"] not in str(listed)
        assert client.delete(f"/api/auth/api-keys/{key['id']}").status_code == 200
        revoked = client.get("/api/auth/me")
        assert revoked.status_code == 401
        assert revoked.json()["error"] == "UNAUTHORIZED"
    again = user.client.delete(f"/api/auth/api-keys/{key['id']}")
    assert again.status_code == 404
    assert again.json()["error"] == "API_KEY_NOT_FOUND"
    bad = user.client.post("/api/auth/api-keys", json={"name": "x", "expiresAt": "soon"})
    assert bad.status_code == 400 and bad.json()["error"] == "VALIDATION_ERROR"


def test_the_owner_is_the_first_admin(auth_server: RunningServer) -> None:
    me = httpx.get(f"{auth_server.base_url}/api/auth/me", headers=auth_server.auth).json()
    assert me["role"] == "admin"
    missing = httpx.get(f"{auth_server.base_url}/api/auth/me")
    assert missing.status_code == 401 and missing.json()["error"] == "UNAUTHORIZED"
