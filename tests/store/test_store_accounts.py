"""Users and API keys in the store, on every backend."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from runnel.store import ConflictError, SqlStore
from runnel.store.accounts import ApiKeyAuth, ApiKeyRecord, UserRecord
from runnel.store.connect import create_store_engine


def user(user_id: str = "u1", **fields: object) -> UserRecord:
    values: dict[str, object] = {"id": user_id, "role": "member", "created_at": 100.0}
    values.update(fields)
    return UserRecord(**values)  # type: ignore[arg-type]


def key(key_id: str = "k1", user_id: str = "u1", **fields: object) -> ApiKeyRecord:
    values: dict[str, object] = {
        "id": key_id,
        "user_id": user_id,
        "name": f"key {key_id}",
        "prefix": "eyJ...abc",
        "token_sha256": f"digest-{key_id}",
        "created_at": 200.0,
    }
    values.update(fields)
    return ApiKeyRecord(**values)  # type: ignore[arg-type]


async def test_users_round_trip(store: SqlStore) -> None:
    assert not await store.has_users()
    full = user(
        "u1",
        email="a@example.com",
        display_name="A",
        password_hash="$argon2id$...",
        address="0xabc",
        role="admin",
        disabled=True,
    )
    await store.create_user(full)
    await store.create_user(user("u2", created_at=150.0))
    assert await store.has_users()
    assert await store.count_users() == 2
    assert await store.get_user("u1") == full
    assert await store.get_user_by_email("a@example.com") == full
    assert await store.get_user_by_address("0xabc") == full
    assert await store.get_user("nope") is None
    assert await store.get_user_by_email("b@example.com") is None
    assert [u.id for u in await store.list_users()] == ["u1", "u2"]

    assert await store.set_password_hash("u2", "$argon2id$new")
    assert await store.set_user_disabled("u2", True)
    changed = await store.get_user("u2")
    assert changed is not None
    assert (changed.password_hash, changed.disabled) == ("$argon2id$new", True)
    assert not await store.set_password_hash("nope", None)


async def test_emails_addresses_and_ids_are_unique(store: SqlStore) -> None:
    await store.create_user(user("u1", email="a@example.com", address="0xabc"))
    # Several users without email or address are fine.
    await store.create_user(user("u2"))
    await store.create_user(user("u3"))
    with pytest.raises(ConflictError):
        await store.create_user(user("u4", email="a@example.com"))
    with pytest.raises(ConflictError):
        await store.create_user(user("u5", address="0xabc"))
    with pytest.raises(ConflictError):
        await store.create_user(user("u1"))


async def test_api_keys(store: SqlStore) -> None:
    await store.create_user(user("u1", role="admin"))
    await store.create_user(user("u2"))
    await store.create_api_key(key("k1", "u1", expires_at=999.0))
    await store.create_api_key(key("k2", "u2", created_at=300.0))
    await store.create_api_key(key("k3", "u2", created_at=400.0))
    with pytest.raises(ConflictError):  # unknown user
        await store.create_api_key(key("k4", "nobody"))
    with pytest.raises(ConflictError):  # same digest
        await store.create_api_key(key("k5", "u1", token_sha256="digest-k1"))

    assert await store.get_api_key("k1") == key("k1", "u1", expires_at=999.0)
    assert await store.api_key_for_auth("k2") == ApiKeyAuth(
        key=key("k2", "u2", created_at=300.0), user_role="member", user_disabled=False
    )
    assert await store.api_key_for_auth("nope") is None
    assert [k.id for k in await store.list_api_keys("u2")] == ["k2", "k3"]
    assert [k.id for k in await store.list_api_keys()] == ["k1", "k2", "k3"]

    # Revoking: only the owner's key when a user is named; once.
    assert not await store.revoke_api_key("k2", 500.0, user_id="u1")
    assert await store.revoke_api_key("k2", 500.0, user_id="u2")
    assert not await store.revoke_api_key("k2", 501.0)
    assert await store.revoke_api_key("k3", 502.0)
    assert await store.list_api_keys("u2") == []
    revoked = await store.list_api_keys("u2", include_revoked=True)
    assert [(k.id, k.revoked_at) for k in revoked] == [("k2", 500.0), ("k3", 502.0)]
    found = await store.api_key_for_auth("k2")
    assert found is not None
    assert found.key.revoked_at == 500.0


async def test_touch_writes_at_most_once_per_interval(store: SqlStore) -> None:
    await store.create_user(user())
    await store.create_api_key(key())
    assert await store.touch_api_key("k1", 1000.0, min_interval=60)
    assert not await store.touch_api_key("k1", 1030.0, min_interval=60)
    assert await store.touch_api_key("k1", 1060.0, min_interval=60)
    stored = await store.get_api_key("k1")
    assert stored is not None
    assert stored.last_used_at == 1060.0
    assert not await store.touch_api_key("nope", 1000.0)


async def test_the_owner_is_created_once_even_when_racing(store: SqlStore) -> None:
    results = await asyncio.gather(
        *(
            store.create_owner(user(f"owner{n}", role="admin"), key(f"k{n}", f"owner{n}"))
            for n in range(5)
        )
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await store.count_users() == 1
    assert len(await store.list_api_keys()) == 1
    assert not await store.create_owner(user("late"), key("late", "late"))


async def test_deleting_a_user_deletes_its_keys(store: SqlStore) -> None:
    # Not an operation of the store yet; the schema keeps keys from outliving their user.
    await store.create_user(user())
    await store.create_api_key(key())
    await asyncio.to_thread(_delete_user, store, "u1")
    assert await store.get_api_key("k1") is None


def _delete_user(store: SqlStore, user_id: str) -> None:
    engine = create_store_engine(store.url, "admin")
    try:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})
    finally:
        engine.dispose()
