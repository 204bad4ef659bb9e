"""Account use cases on a real store: SQLite always, PostgreSQL when
``RUNNEL_TEST_POSTGRES_URL`` is set (skipped otherwise)."""

from __future__ import annotations

import stat
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from dbfixtures import FakeClock
from runnel.auth.passwords import Passwords
from runnel.auth.tokens import issue_token
from runnel.services.accounts import (
    ADMIN_TOKEN_FILE,
    AUTH_CACHE_SECONDS,
    AccountService,
    ApiKeyInfo,
    Principal,
    Role,
)
from runnel.services.errors import Conflict, InvalidInput, NotFound, Unauthorized
from runnel.store import SqlStore

SIGNING_KEY = b"s" * 32
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def accounts(store: SqlStore, clock: FakeClock) -> AccountService:
    cheap = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return AccountService(store, SIGNING_KEY, clock, passwords=cheap)


async def member(accounts: AccountService, email: str = "bob@example.com") -> str:
    return (await accounts.create_user(email, "password-123")).id


# -- the owner --------------------------------------------------------------------------


async def test_first_start_creates_the_owner_and_writes_the_admin_token(
    accounts: AccountService, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    assert await accounts.owner_principal() is None
    boot = await accounts.ensure_owner(data_dir)
    assert boot is not None
    assert boot.token.startswith("eyJ")
    assert boot.token_file == data_dir / ADMIN_TOKEN_FILE
    assert stat.S_IMODE(boot.token_file.stat().st_mode) == 0o600
    assert boot.token_file.read_text() == boot.token + "\n"
    assert boot.user.role is Role.ADMIN
    assert boot.key.user_id == boot.user.id
    assert boot.key.name == "admin"
    assert [p.name for p in data_dir.iterdir()] == [ADMIN_TOKEN_FILE]  # no temporary left

    principal = await accounts.authenticate_token(boot.token)
    assert principal == Principal(boot.user.id, Role.ADMIN, boot.key.id)
    assert principal.is_admin
    assert principal.owner_scope is None
    assert await accounts.owner_principal() == Principal(boot.user.id, Role.ADMIN)

    # Later starts: nothing new, the file is left alone.
    boot.token_file.write_text("kept")
    assert await accounts.ensure_owner(data_dir) is None
    assert boot.token_file.read_text() == "kept"
    assert len(await accounts.list_users()) == 1


async def test_no_owner_when_users_exist(accounts: AccountService, tmp_path: Path) -> None:
    await member(accounts)
    assert await accounts.ensure_owner(tmp_path) is None
    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()


# -- users ------------------------------------------------------------------------------


async def test_create_user(accounts: AccountService, clock: FakeClock) -> None:
    user = await accounts.create_user("  Alice@Example.COM ", "password-123", role="admin")
    assert user.email == "alice@example.com"
    assert user.display_name == "alice"
    assert user.role is Role.ADMIN
    assert user.has_password
    assert user.created_at == START
    assert await accounts.get_user(user.id) == user
    clock.now += 1
    named = await accounts.create_user("c@example.com", "password-123", display_name=" Cee ")
    assert named.display_name == "Cee"
    assert named.role is Role.MEMBER
    assert [u.id for u in await accounts.list_users()] == [user.id, named.id]
    with pytest.raises(Conflict, match="already exists"):
        await accounts.create_user("ALICE@example.com", "another-password")
    with pytest.raises(NotFound):
        await accounts.get_user("nobody")


async def test_create_user_lists_every_problem(accounts: AccountService) -> None:
    with pytest.raises(InvalidInput) as caught:
        await accounts.create_user("not-an-email", "short", role="root")
    assert {p.where for p in caught.value.problems} == {"email", "password", "role"}
    assert "password: must be at least 8 characters" in caught.value.message


async def test_authenticate_password(accounts: AccountService) -> None:
    user = await accounts.create_user("a@example.com", "password-123")
    assert await accounts.authenticate_password("A@example.com", "password-123") == user
    with pytest.raises(Unauthorized, match="Wrong email or password"):
        await accounts.authenticate_password("a@example.com", "password-124")
    with pytest.raises(Unauthorized, match="Wrong email or password"):
        await accounts.authenticate_password("nobody@example.com", "password-123")


async def test_a_password_made_with_old_parameters_is_rehashed(
    store: SqlStore, accounts: AccountService, clock: FakeClock
) -> None:
    user = await accounts.create_user("a@example.com", "password-123")
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    upgraded = AccountService(store, SIGNING_KEY, clock, passwords=stronger)
    await upgraded.authenticate_password("a@example.com", "password-123")
    stored = await store.get_user(user.id)
    assert stored is not None
    assert stored.password_hash is not None
    assert not stronger.needs_rehash(stored.password_hash)


# -- API keys ---------------------------------------------------------------------------


async def test_create_list_and_use_a_key(accounts: AccountService, clock: FakeClock) -> None:
    bob = await member(accounts)
    info, token = await accounts.create_api_key(bob, "  laptop ", expires_at=START + 3600.5)
    assert token.startswith("eyJ")
    assert info.name == "laptop"
    assert info.expires_at == START + 3601  # whole seconds, as in the token
    assert info.last_used_at is None
    assert token not in info.prefix
    assert info.prefix.endswith(token[-6:])

    principal = await accounts.authenticate_token(token)
    assert principal == Principal(bob, Role.MEMBER, info.id)
    assert principal.owner_scope == bob

    (listed,) = await accounts.list_api_keys(bob)
    assert listed.id == info.id
    assert listed.last_used_at == START
    # Nothing secret in a listing: no field holds the token or its digest.
    assert {f.name for f in fields(ApiKeyInfo)} == {
        "id",
        "user_id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert all(token not in str(getattr(listed, f.name)) for f in fields(ApiKeyInfo))
    assert await accounts.list_api_keys("someone-else") == []
    assert [k.id for k in await accounts.list_api_keys(None)] == [info.id]


async def test_last_used_is_written_at_most_once_a_minute(
    accounts: AccountService, store: SqlStore, clock: FakeClock
) -> None:
    bob = await member(accounts)
    info, token = await accounts.create_api_key(bob, "k")

    async def last_used() -> float | None:
        stored = await store.get_api_key(info.id)
        assert stored is not None
        return stored.last_used_at

    await accounts.authenticate_token(token)
    assert await last_used() == START
    clock.now += 30
    await accounts.authenticate_token(token)
    assert await last_used() == START
    clock.now += 30
    await accounts.authenticate_token(token)
    assert await last_used() == START + 60


async def test_a_revoked_key_is_refused_at_once(accounts: AccountService) -> None:
    bob = await member(accounts)
    info, token = await accounts.create_api_key(bob, "k")
    await accounts.authenticate_token(token)
    await accounts.revoke_api_key(bob, info.id)
    with pytest.raises(Unauthorized, match="API key revoked"):
        await accounts.authenticate_token(token)
    assert await accounts.list_api_keys(bob) == []
    (revoked,) = await accounts.list_api_keys(bob, include_revoked=True)
    assert revoked.revoked
    with pytest.raises(NotFound):
        await accounts.revoke_api_key(bob, info.id)


async def test_a_verified_key_is_remembered_for_a_short_while(
    accounts: AccountService, store: SqlStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = await member(accounts)
    info, token = await accounts.create_api_key(bob, "k")
    principal = await accounts.authenticate_token(token)
    # Revoked by another process: this one trusts the key until AUTH_CACHE_SECONDS passed.
    other = AccountService(store, SIGNING_KEY, clock)
    await other.revoke_api_key(bob, info.id)
    reads = 0
    read = store.api_key_for_auth

    async def counted(key_id: str) -> Any:
        nonlocal reads
        reads += 1
        return await read(key_id)

    monkeypatch.setattr(store, "api_key_for_auth", counted)
    assert await accounts.authenticate_token(token) == principal
    assert reads == 0
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + AUTH_CACHE_SECONDS)
    with pytest.raises(Unauthorized, match="API key revoked"):
        await accounts.authenticate_token(token)
    assert reads == 1


async def test_a_remembered_key_still_expires_and_can_be_forgotten(
    accounts: AccountService, store: SqlStore, clock: FakeClock
) -> None:
    bob = await member(accounts)
    _, token = await accounts.create_api_key(bob, "k", expires_at=START + 60)
    _, other_token = await accounts.create_api_key(bob, "other")
    await accounts.authenticate_token(token)
    await accounts.authenticate_token(other_token)
    clock.now = START + 60
    with pytest.raises(Unauthorized, match="API key expired"):
        await accounts.authenticate_token(token)
    await store.set_user_disabled(bob, True)
    await accounts.authenticate_token(other_token)  # remembered
    accounts.forget_verified(user_id=bob)
    with pytest.raises(Unauthorized, match="User disabled"):
        await accounts.authenticate_token(other_token)
    # Without the memory every use reads the store.
    uncached = AccountService(store, SIGNING_KEY, clock, auth_cache_seconds=0)
    with pytest.raises(Unauthorized, match="User disabled"):
        await uncached.authenticate_token(other_token)


async def test_revoke_is_refused_for_someone_elses_key(accounts: AccountService) -> None:
    bob = await member(accounts, "bob@example.com")
    eve = await member(accounts, "eve@example.com")
    info, token = await accounts.create_api_key(bob, "k")
    with pytest.raises(NotFound, match=f"(?i)api key {info.id} not found"):
        await accounts.revoke_api_key(eve, info.id)
    await accounts.authenticate_token(token)  # still valid
    with pytest.raises(NotFound):
        await accounts.revoke_api_key(eve, "no-such-key")
    # An admin (or the command line) may revoke anyone's key.
    await accounts.revoke_api_key(None, info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        await accounts.authenticate_token(token)


async def test_an_expired_key_is_refused(accounts: AccountService, clock: FakeClock) -> None:
    bob = await member(accounts)
    _, token = await accounts.create_api_key(bob, "k", expires_at=START + 60)
    clock.now = START + 59
    await accounts.authenticate_token(token)
    clock.now = START + 60
    with pytest.raises(Unauthorized, match="API key expired"):
        await accounts.authenticate_token(token)


async def test_bad_tokens_are_refused_with_a_reason(accounts: AccountService) -> None:
    bob = await member(accounts)
    info, token = await accounts.create_api_key(bob, "k")
    header, payload, signature = token.split(".")
    cases = {
        None: "Missing API key",
        "": "Missing API key",
        "   ": "Missing API key",
        "not-a-token": "Invalid API key: malformed",
        f"{header}.{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}": (
            "Invalid API key: bad signature"
        ),
        issue_token(b"x" * 32, info.id, bob, START): "Invalid API key: bad signature",
        # Correctly signed, but never issued: the store does not know it.
        issue_token(SIGNING_KEY, "unknown", bob, START): "Invalid API key: unknown key",
        issue_token(SIGNING_KEY, info.id, bob, START + 1): "Invalid API key: unknown key",
        issue_token(SIGNING_KEY, info.id, "eve", START): "Invalid API key: unknown key",
    }
    for bad, message in cases.items():
        with pytest.raises(Unauthorized) as caught:
            await accounts.authenticate_token(bad)
        assert caught.value.message == message, bad
    none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + "."
    with pytest.raises(Unauthorized, match="unsupported algorithm"):
        await accounts.authenticate_token(none_alg)
    assert (await accounts.authenticate_token(f"  {token} ")).key_id == info.id


async def test_a_disabled_users_keys_stop_working(
    accounts: AccountService, store: SqlStore
) -> None:
    bob = await member(accounts)
    _, token = await accounts.create_api_key(bob, "k")
    await store.set_user_disabled(bob, True)
    with pytest.raises(Unauthorized, match="User disabled"):
        await accounts.authenticate_token(token)
    with pytest.raises(NotFound):
        await accounts.create_api_key(bob, "another")


async def test_create_api_key_checks_its_input(accounts: AccountService, clock: FakeClock) -> None:
    bob = await member(accounts)
    with pytest.raises(InvalidInput) as caught:
        await accounts.create_api_key(bob, "  ", expires_at=START)
    assert {p.where for p in caught.value.problems} == {"name", "expires_at"}
    with pytest.raises(InvalidInput, match="at most"):
        await accounts.create_api_key(bob, "x" * 201)
    with pytest.raises(NotFound, match="User nobody not found"):
        await accounts.create_api_key("nobody", "k")


def test_the_signing_key_must_not_be_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="signing key"):
        AccountService(None, b"")  # type: ignore[arg-type]
