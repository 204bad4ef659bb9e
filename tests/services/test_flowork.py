"""Flowork use cases on a real store (SQLite always, PostgreSQL when
``RUNNEL_TEST_POSTGRES_URL`` is set) with real keys and a clock the tests move."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from dbfixtures import FakeClock
from flowork_keys import Wallet, preset_signature
from runnel.auth.signatures import MessageFormat, SignatureProblem, SignedMessage
from runnel.engine.registry import default_registry
from runnel.engine.services import NodeServices
from runnel.model.execution import ExecutionStatus
from runnel.model.workflow import Node, Workflow
from runnel.platform import Platform, PlatformConfig
from runnel.services.engine_events import (
    AuthListChanged,
    EngineDeleted,
    EngineEvent,
    EngineRenamed,
    EngineTokenReset,
    KillSwitchChanged,
)
from runnel.services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from runnel.services.flowork import FloworkServices
from runnel.services.identities import SignatureRejected
from runnel.services.share_links import PresetAction, ShareLevel
from runnel.store import SqlStore
from runnel.store.accounts import UserRecord
from runnel.store.connect import create_store_engine

KEY = b"instance-key-for-the-flowork-tests"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[EngineEvent]:
    return []


@pytest.fixture
def flowork(store: SqlStore, clock: FakeClock, events: list[EngineEvent]) -> FloworkServices:
    services = FloworkServices(store, default_registry(), NodeServices(), KEY, clock=clock)

    async def record(event: EngineEvent) -> None:
        events.append(event)

    services.events.listen(record)
    return services


def api_message(wallet: Wallet, at: float) -> SignedMessage:
    text = f"flowork_api_auth|{wallet.address}|{int(at)}"
    return SignedMessage(wallet.address, text, wallet.sign(text))


async def sign_in(flowork: FloworkServices, wallet: Wallet, clock: FakeClock) -> str:
    clock.now += 1  # a new second: a new message
    return (await flowork.identities.sign_in(api_message(wallet, clock.now))).id


# -- identities -------------------------------------------------------------------------


async def test_sign_in_registers_once_and_refuses_replays(
    flowork: FloworkServices, clock: FakeClock
) -> None:
    wallet = Wallet()
    message = api_message(wallet, clock.now)
    user = await flowork.identities.sign_in(message)
    assert user.address == wallet.lower
    assert (user.user.address, user.user.display_name) == (
        wallet.lower,
        f"user_{wallet.lower[2:10]}",
    )
    with pytest.raises(SignatureRejected) as caught:
        await flowork.identities.sign_in(message)
    assert caught.value.problem is SignatureProblem.REPLAYED
    # The next message signs in as the same user.
    clock.now += 1
    again = await flowork.identities.sign_in(api_message(wallet, clock.now))
    assert again.id == user.id
    # A replay is refused until the window closed, and then the message is stale anyway.
    clock.now = START + 299
    with pytest.raises(SignatureRejected) as caught:
        await flowork.identities.sign_in(message)
    assert caught.value.problem is SignatureProblem.REPLAYED
    clock.now = START + 301
    with pytest.raises(SignatureRejected) as caught:
        await flowork.identities.sign_in(message)
    assert caught.value.problem is SignatureProblem.STALE


async def test_a_refused_signature_is_not_remembered(
    flowork: FloworkServices, clock: FakeClock
) -> None:
    wallet = Wallet()
    good = api_message(wallet, clock.now)
    bad = SignedMessage(wallet.address, good.message, Wallet().sign(good.message))
    with pytest.raises(SignatureRejected) as caught:
        await flowork.identities.sign_in(bad)
    assert caught.value.problem is SignatureProblem.WRONG_SIGNER
    assert (await flowork.identities.sign_in(good)).address == wallet.lower


async def test_a_disabled_user_cannot_sign_in(
    flowork: FloworkServices, store: SqlStore, clock: FakeClock
) -> None:
    wallet = Wallet()
    user_id = await sign_in(flowork, wallet, clock)
    await store.set_user_disabled(user_id, True)
    with pytest.raises(Unauthorized, match="disabled"):
        await sign_in(flowork, wallet, clock)


async def test_other_message_formats(flowork: FloworkServices, clock: FakeClock) -> None:
    wallet = Wallet()
    text = f"Flowork GUI-to-Engine Authentication: {int(clock.now * 1000)}"
    verified = await flowork.identities.verify(
        SignedMessage(wallet.address, text, wallet.sign(text)), MessageFormat.ENGINE
    )
    assert verified.address == wallet.lower


async def test_linking_an_address_to_an_email_user(
    flowork: FloworkServices, store: SqlStore, clock: FakeClock
) -> None:
    await store.create_user(UserRecord("email-user", "member", START, email="a@example.com"))
    wallet = Wallet()
    linked = await flowork.identities.link_address("email-user", wallet.address)
    assert linked.address == wallet.lower
    # Signing in with it is the email user now, not a new account.
    assert await sign_in(flowork, wallet, clock) == "email-user"
    assert (await flowork.identities.link_address("email-user", wallet.address)).id == (
        "email-user"
    )
    with pytest.raises(Conflict, match="already has"):
        await flowork.identities.link_address("email-user", Wallet().address)
    taken = Wallet()
    await sign_in(flowork, taken, clock)
    await store.create_user(UserRecord("second", "member", START, email="b@example.com"))
    with pytest.raises(Conflict, match="another user"):
        await flowork.identities.link_address("second", taken.address)


async def test_finding_users_by_identifier(
    flowork: FloworkServices, store: SqlStore, clock: FakeClock
) -> None:
    await store.create_user(UserRecord("ann", "member", START, display_name="Ann"))
    await store.create_user(UserRecord("bob1", "member", START, display_name="Bob"))
    await store.create_user(UserRecord("bob2", "member", START + 1, display_name="bob"))
    identities = flowork.identities
    assert (await identities.find("ANN", create_addresses=False)).id == "ann"
    with pytest.raises(Conflict, match="Several users"):
        await identities.find("bob", create_addresses=False)
    with pytest.raises(NotFound):
        await identities.find("nobody", create_addresses=False)
    with pytest.raises(InvalidInput):
        await identities.find("0x1234", create_addresses=True)
    with pytest.raises(InvalidInput):
        await identities.find("  ", create_addresses=True)
    fresh = Wallet()
    with pytest.raises(NotFound):
        await identities.find(fresh.address, create_addresses=False)
    created = await identities.find(fresh.address, create_addresses=True)
    assert created.address == fresh.lower
    # The account made for the address is the one its holder signs in to.
    assert await sign_in(flowork, fresh, clock) == created.id


# -- engines ----------------------------------------------------------------------------


async def test_the_engine_lifecycle(
    flowork: FloworkServices, clock: FakeClock, events: list[EngineEvent]
) -> None:
    owner, other = Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    other_id = await sign_in(flowork, other, clock)
    engines = flowork.engines
    engine, token = await engines.register(owner_id, "  Laptop (home)  ")
    assert engine.name == "Laptop (home)" and not engine.online
    assert token.startswith("dev_engine_")
    assert (await engines.authenticate(token)).id == engine.id
    assert await engines.authorized_addresses(engine.id) == [owner.lower]

    for bad in ("", "x" * 65, "bad\nname", "semi;colon", None, 5):
        with pytest.raises(InvalidInput):
            await engines.register(owner_id, bad)

    # Only the owner changes it.
    with pytest.raises(Forbidden):
        await engines.rename(other_id, engine.id, "mine now")
    with pytest.raises(Forbidden):
        await engines.reset_token(other_id, engine.id)
    with pytest.raises(Forbidden):
        await engines.delete(other_id, engine.id)
    with pytest.raises(NotFound):
        await engines.rename(owner_id, "no-such-engine", "x")

    renamed = await engines.rename(owner_id, engine.id, "Desk")
    assert renamed.name == "Desk"
    new_token = await engines.reset_token(owner_id, engine.id)
    with pytest.raises(Unauthorized):
        await engines.authenticate(token)
    assert (await engines.authenticate(new_token)).id == engine.id
    for bad_token in (None, "", "dev_engine_" + "0" * 32, "eyJ.x.y"):
        with pytest.raises(Unauthorized):
            await engines.authenticate(bad_token)

    # Online once it reports in, offline when it has been quiet too long.
    await engines.record_seen(engine.id, "http://10.1.2.3:8990")
    seen = await engines.get(engine.id)
    assert seen.online and seen.internal_api_url == "http://10.1.2.3:8990"
    clock.now += 121
    assert not (await engines.get(engine.id)).online

    await engines.delete(owner_id, engine.id)
    with pytest.raises(Unauthorized):
        await engines.authenticate(new_token)
    assert await engines.list_owned(owner_id) == []
    assert events == [
        EngineRenamed(engine.id, "Desk"),
        EngineTokenReset(engine.id),
        EngineDeleted(engine.id),
    ]


async def test_the_claim_flow(flowork: FloworkServices, clock: FakeClock) -> None:
    owner, other = Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    other_id = await sign_in(flowork, other, clock)
    engines = flowork.engines
    engine, old_token = await engines.register(owner_id, "Dashboard engine")

    with pytest.raises(Forbidden):
        await engines.select_for_auth(other_id, "req-1", engine.id)
    for request_id, engine_id in ((None, engine.id), ("bad id!", engine.id), ("r", None)):
        with pytest.raises(InvalidInput):
            await engines.select_for_auth(owner_id, request_id, engine_id)

    await engines.select_for_auth(owner_id, "req-1", engine.id)
    # Rotated at once: the old token no longer works, before anyone claimed the new one.
    with pytest.raises(Unauthorized):
        await engines.authenticate(old_token)
    with pytest.raises(Conflict):
        await engines.select_for_auth(owner_id, "req-1", engine.id)
    engine_id, token = await engines.claim("req-1")
    assert engine_id == engine.id and (await engines.authenticate(token)).id == engine.id
    with pytest.raises(NotFound):
        await engines.claim("req-1")  # once
    with pytest.raises(NotFound):
        await engines.claim("never-parked")
    with pytest.raises(InvalidInput):
        await engines.claim(None)

    # After 300 s a parked token is gone (and the request id can be used again).
    await engines.select_for_auth(owner_id, "req-2", engine.id)
    clock.now += 301
    with pytest.raises(NotFound, match="expired"):
        await engines.claim("req-2")
    await engines.select_for_auth(owner_id, "req-2", engine.id)
    assert (await engines.claim("req-2"))[0] == engine.id


async def test_the_active_engine(flowork: FloworkServices, clock: FakeClock) -> None:
    owner, friend, stranger = Wallet(), Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    friend_id = await sign_in(flowork, friend, clock)
    stranger_id = await sign_in(flowork, stranger, clock)
    engines = flowork.engines
    with pytest.raises(NotFound, match="no engine"):
        await engines.active_engine(owner_id, None)
    first, _ = await engines.register(owner_id, "first")
    clock.now += 1
    second, _ = await engines.register(owner_id, "second")
    assert (await engines.active_engine(owner_id, None)).id == first.id
    await engines.record_seen(second.id)
    assert (await engines.active_engine(owner_id, None)).id == second.id
    assert (await engines.active_engine(owner_id, first.id)).id == first.id

    with pytest.raises(Forbidden):
        await engines.active_engine(stranger_id, first.id)
    await flowork.sharing.share(owner_id, first.id, friend.address)
    assert (await engines.active_engine(friend_id, first.id)).id == first.id
    await flowork.sharing.revoke(owner_id, first.id, friend_id)
    with pytest.raises(Forbidden):
        await engines.active_engine(friend_id, first.id)
    with pytest.raises(NotFound):
        await engines.active_engine(friend_id, "no-such-engine")

    embedded = await engines.ensure_embedded(owner_id)
    assert embedded.embedded and embedded.online
    assert (await engines.ensure_embedded(stranger_id)).id == embedded.id
    assert (await engines.active_engine(owner_id, None)).id == embedded.id
    with pytest.raises(Conflict):
        await engines.delete(owner_id, embedded.id)


async def test_sharing_and_what_the_engine_is_told(
    flowork: FloworkServices, store: SqlStore, clock: FakeClock, events: list[EngineEvent]
) -> None:
    owner, friend = Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    friend_id = await sign_in(flowork, friend, clock)
    await store.create_user(UserRecord("carol", "member", START, display_name="Carol"))
    engine, _ = await flowork.engines.register(owner_id, "Shared")
    sharing = flowork.sharing

    by_address = await sharing.share(owner_id, engine.id, friend.address)
    assert by_address.user.id == friend_id
    clock.now += 1
    by_name = await sharing.share(owner_id, engine.id, "carol")
    assert by_name.user.id == "carol"
    clock.now += 1
    newcomer = Wallet()
    made = await sharing.share(owner_id, engine.id, newcomer.lower)
    assert made.user.address == newcomer.lower
    assert await flowork.engines.authorized_addresses(engine.id) == sorted(
        [owner.lower, friend.lower, newcomer.lower]
    )
    assert [s.user.id for s in await sharing.list(owner_id, engine.id)] == [
        friend_id,
        "carol",
        made.user.id,
    ]
    with pytest.raises(Conflict):
        await sharing.share(owner_id, engine.id, friend.address)
    with pytest.raises(InvalidInput):
        await sharing.share(owner_id, engine.id, owner.address)
    with pytest.raises(InvalidInput):
        await sharing.share(owner_id, engine.id, 12)
    with pytest.raises(NotFound):
        await sharing.share(owner_id, engine.id, "nobody-by-that-name")
    with pytest.raises(Forbidden):
        await sharing.share(friend_id, engine.id, "carol")
    with pytest.raises(Forbidden):
        await sharing.list(friend_id, engine.id)
    shared = await flowork.engines.list_shared_with(friend_id)
    assert [(s.engine.id, s.owner.id) for s in shared] == [(engine.id, owner_id)]

    await sharing.revoke(owner_id, engine.id, friend_id)
    with pytest.raises(NotFound):
        await sharing.revoke(owner_id, engine.id, friend_id)
    assert friend.lower not in await flowork.engines.authorized_addresses(engine.id)
    assert events == [AuthListChanged(engine.id)] * 4


# -- share links ------------------------------------------------------------------------


async def test_share_links_grant_by_level(flowork: FloworkServices, clock: FakeClock) -> None:
    owner, other = Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    other_id = await sign_in(flowork, other, clock)
    links = flowork.share_links
    made = {}
    for level in ShareLevel:
        clock.now += 1
        made[level] = await links.create(owner_id, "My Flow", level.value, f"{level.value} link")
    listed = await links.list(owner_id, "My Flow")
    assert [link.id for link in listed] == [made[level].id for level in reversed(ShareLevel)]
    assert await links.list(other_id, "My Flow") == []
    for link in made.values():
        # 24 random bytes: 32 URL-safe characters, 192 bits.
        assert len(link.token) == 32
    expected = {
        ShareLevel.VIEW: {PresetAction.LOAD},
        ShareLevel.VIEW_RUN: {PresetAction.LOAD, PresetAction.RUN},
        ShareLevel.VIEW_EDIT_RUN: set(PresetAction),
    }
    for level, link in made.items():
        for action in PresetAction:
            if action in expected[level]:
                grant = await links.authorize(link.token, owner.address, "My Flow", action)
                assert (grant.owner_id, grant.owner_address, grant.level) == (
                    owner_id,
                    owner.lower,
                    level,
                )
            else:
                with pytest.raises(Forbidden):
                    await links.authorize(link.token, owner.address, "My Flow", action)

    token = made[ShareLevel.VIEW_EDIT_RUN].token
    with pytest.raises(Forbidden):
        await links.authorize(token, owner_id, "Other Flow", PresetAction.LOAD)
    with pytest.raises(Forbidden):
        await links.authorize(token, other.address, "My Flow", PresetAction.LOAD)
    assert (await links.authorize(token, None, "My Flow", PresetAction.SAVE)).owner_id == owner_id

    # A downgrade counts at once; so does a deletion.
    link_id = made[ShareLevel.VIEW_EDIT_RUN].id
    with pytest.raises(NotFound):
        await links.update(other_id, link_id, "view")
    assert (await links.update(owner_id, link_id, "view")).level is ShareLevel.VIEW
    with pytest.raises(Forbidden):
        await links.authorize(token, owner.address, "My Flow", PresetAction.SAVE)
    resolved = await links.resolve(token)
    assert (resolved.preset_name, resolved.level) == ("My Flow", ShareLevel.VIEW)
    with pytest.raises(NotFound):
        await links.delete(other_id, link_id)
    await links.delete(owner_id, link_id)
    with pytest.raises(NotFound):
        await links.resolve(token)

    for bad_level in ("read", None, "VIEW"):
        with pytest.raises(InvalidInput):
            await links.create(owner_id, "My Flow", bad_level)
    for bad_name in ("", "a/b", "x" * 129, "tab\there"):
        with pytest.raises(InvalidInput):
            await links.create(owner_id, bad_name, "view")
    with pytest.raises(InvalidInput):
        await links.create(owner_id, "My Flow", "view", "x" * 101)


async def test_share_link_tokens_are_kept_sealed(
    flowork: FloworkServices, store: SqlStore, clock: FakeClock
) -> None:
    owner_id = await sign_in(flowork, Wallet(), clock)
    link = await flowork.share_links.create(owner_id, "p", "view")
    rows = await _rows(store, "SELECT token_sha256, token_sealed FROM workflow_share_links")
    assert link.token not in json.dumps(rows)


# -- user state -------------------------------------------------------------------------


async def test_favorites_and_other_state(flowork: FloworkServices, clock: FakeClock) -> None:
    user_id = await sign_in(flowork, Wallet(), clock)
    state = flowork.user_state
    assert await state.get(user_id, "favorite_presets") == []
    assert await state.put(user_id, "favorite_presets", ["a", "b", "a"]) == ["a", "b"]
    assert await state.get(user_id, "favorite_presets") == ["a", "b"]
    for bad in ("a", [1], [""], ["x" * 257], ["ok", None], ["a"] * 501, {"a": 1}):
        with pytest.raises(InvalidInput):
            await state.put(user_id, "favorite_presets", bad)
    assert await state.put(user_id, "layout", {"zoom": 1.5}) == {"zoom": 1.5}
    assert await state.get(user_id, "layout") == {"zoom": 1.5}
    with pytest.raises(NotFound):
        await state.get(user_id, "never_set")
    for bad_key in ("Upper", "with-dash", "", "x" * 65):
        with pytest.raises(InvalidInput):
            await state.get(user_id, bad_key)
    with pytest.raises(InvalidInput):
        await state.put(user_id, "big", "x" * (64 * 1024))
    for n in range(48):
        await state.put(user_id, f"key_{n}", n)
    with pytest.raises(Conflict):
        await state.put(user_id, "one_too_many", 1)
    await state.delete(user_id, "layout")
    await state.put(user_id, "one_too_many", 1)


# -- presets and variables --------------------------------------------------------------


async def test_presets_are_versioned_signed_and_chained(
    flowork: FloworkServices, store: SqlStore
) -> None:
    wallet, other = Wallet(), Wallet()
    presets = flowork.presets
    first = {"nodes": [{"id": "a", "module_id": "debug_popup_module"}], "connections": []}
    second = {"nodes": [], "connections": [], "global_loop_config": {"isEnabled": False}}
    saved = await presets.save(
        wallet.address, "Daily", first, preset_signature(wallet, first), wallet.address
    )
    assert (saved.version, saved.previous_hash, saved.owner) == (1, None, wallet.lower)
    again = await presets.save(
        wallet.lower, "Daily", second, preset_signature(wallet, second), wallet.address
    )
    assert (again.version, again.previous_hash) == (2, saved.hash)
    loaded = await presets.load(wallet.address, "Daily")
    assert (loaded.version, loaded.workflow_data) == (2, second)
    assert [s.name for s in await presets.list(wallet.address)] == ["Daily"]

    with pytest.raises(InvalidInput, match="signature"):
        await presets.save(
            wallet.address, "Daily", first, preset_signature(other, first), wallet.address
        )
    with pytest.raises(InvalidInput, match="signature"):
        await presets.save(wallet.address, "Daily", first, "", wallet.address)
    for bad in ([], "x", {"nodes": "no"}, {"connections": {}}):
        with pytest.raises(InvalidInput):
            await presets.save(wallet.address, "Daily", bad, "0x", wallet.address)
    with pytest.raises(InvalidInput):
        await presets.list("not-an-address")

    # Someone edits version 1 behind the store's back: the chain no longer holds.
    await _execute(
        store,
        "UPDATE preset_versions SET workflow_data = :data WHERE version = 1",
        {"data": json.dumps({"nodes": [], "connections": []})},
    )
    with pytest.raises(Conflict, match="corrupt"):
        await presets.load(wallet.address, "Daily")
    await presets.delete(wallet.address, "Daily")
    with pytest.raises(NotFound):
        await presets.load(wallet.address, "Daily")
    with pytest.raises(NotFound):
        await presets.delete(wallet.address, "Daily")


async def test_a_removed_version_breaks_the_chain(
    flowork: FloworkServices, store: SqlStore
) -> None:
    wallet = Wallet()
    data = {"nodes": [], "connections": []}
    for _ in range(3):
        await flowork.presets.save(
            wallet.address, "p", data, preset_signature(wallet, data), wallet.address
        )
    await _execute(store, "DELETE FROM preset_versions WHERE version = 2", {})
    with pytest.raises(Conflict):
        await flowork.presets.load(wallet.address, "p")


async def test_variables_secrets_and_modes(flowork: FloworkServices, store: SqlStore) -> None:
    owner = Wallet().address
    variables = flowork.variables
    plain = await variables.put(owner, "API_URL", {"value": "https://example.com"})
    assert (plain.value, plain.mode.value, plain.is_secret) == (
        "https://example.com",
        "single",
        False,
    )
    secret = await variables.put(owner, "API_KEY", {"value": "s3cr3t-value", "is_secret": True})
    assert (secret.value, secret.values) == ("", ())
    # At rest, the secret is encrypted.
    rows = await _rows(store, "SELECT name, payload FROM variables")
    assert "s3cr3t-value" not in json.dumps(rows)
    # Saving the masked form back keeps the stored value.
    await variables.put(owner, "API_KEY", {"value": "", "is_secret": True, "is_enabled": True})
    await variables.put(owner, "PICK", {"mode": "random", "values": ["x", "y"]})
    await variables.put(owner, "TURN", {"mode": "sequential", "values": [1, 2, 3]})
    await variables.put(owner, "OFF", {"value": 1, "is_enabled": False})
    names = [v.name for v in await variables.list(owner)]
    assert names == ["API_KEY", "API_URL", "OFF", "PICK", "TURN"]

    runs = [await variables.values_for_run(owner) for _ in range(4)]
    assert all(run["API_KEY"] == "s3cr3t-value" for run in runs)
    assert all(run["PICK"] in {"x", "y"} for run in runs)
    assert [run["TURN"] for run in runs] == [1, 2, 3, 1]
    assert "OFF" not in runs[0]

    for name, data in [
        ("lower", {"value": 1}),
        ("BAD-NAME", {"value": 1}),
        ("X", {"mode": "cyclic"}),
        ("X", {"mode": "random", "values": []}),
        ("X", {"is_secret": "yes"}),
        ("X", {"values": "no"}),
        ("X", "not an object"),
        ("X", {"value": "x" * 70_000}),
    ]:
        with pytest.raises(InvalidInput):
            await variables.put(owner, name, data)
    await variables.delete(owner, "OFF")
    with pytest.raises(NotFound):
        await variables.delete(owner, "OFF")


# -- kill switch ------------------------------------------------------------------------


async def test_the_kill_switch_reaches_the_executor(
    flowork: FloworkServices, events: list[EngineEvent]
) -> None:
    kill_switch = flowork.kill_switch
    node_services = kill_switch.node_services
    await kill_switch.disable("debug_popup_module", "maintenance", "ops")
    await kill_switch.disable("http.request")
    # An alias disables the type it names.
    assert node_services.disabled_types == {"debug.popup", "http.request"}
    assert await kill_switch.component_ids() == ["debug_popup_module", "http.request"]
    await kill_switch.enable("http.request")
    assert node_services.disabled_types == {"debug.popup"}
    with pytest.raises(NotFound):
        await kill_switch.enable("http.request")
    assert await kill_switch.replace(["b.two", "a.one", "a.one"]) == ["a.one", "b.two"]
    for bad in ("", "has space", "x" * 129, None):
        with pytest.raises(InvalidInput):
            await kill_switch.disable(bad)
    assert events == [
        KillSwitchChanged(("debug_popup_module",)),
        KillSwitchChanged(("debug_popup_module", "http.request")),
        KillSwitchChanged(("debug_popup_module",)),
        KillSwitchChanged(("a.one", "b.two")),
    ]


# -- helpers ----------------------------------------------------------------------------


async def _execute(store: SqlStore, sql: str, params: dict[str, object]) -> None:
    engine = create_store_engine(store.url, "admin")
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


async def _rows(store: SqlStore, sql: str) -> list[list[object]]:
    engine = create_store_engine(store.url, "admin")
    try:
        with engine.connect() as connection:
            return [list(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


async def test_a_disabled_component_fails_its_node_in_a_real_run(tmp_path: Path) -> None:
    platform = await Platform.open(PlatformConfig(data_dir=tmp_path))
    await platform.start()
    try:
        await platform.workflows.create(
            Workflow(
                id="wf",
                name="wf",
                nodes=(Node("a", "transform.set", config={"values": {"n": 1}}),),
            )
        )
        await platform.flowork.kill_switch.disable("transform.set", "under review", "ops")
        report = await platform.executions.run("wf", {})
        assert report.execution.status is ExecutionStatus.FAILED
        assert report.execution.error is not None
        assert "component 'transform.set' is disabled by the operator" in (
            report.execution.error.message
        )
        # Live: enabled again, the next run succeeds, without a restart.
        await platform.flowork.kill_switch.enable("transform.set")
        assert (await platform.executions.run("wf", {})).execution.status is (
            ExecutionStatus.SUCCEEDED
        )
    finally:
        await platform.stop()
