"""Flowork's repositories on every backend: the seen-set, engines with their shares and
claims, share links, user state, the kill switch, presets, variables, dashboard tallies."""

from __future__ import annotations

import asyncio

import pytest

from runnel.model.execution import ExecutionStatus
from runnel.store import ConflictError, SqlStore
from runnel.store.accounts import UserRecord
from runnel.store.engines import ClaimOutcome, EngineRecord
from runnel.store.killswitch import DisabledComponent
from runnel.store.presets import PresetHead, PresetVersionRecord
from runnel.store.sharelinks import ShareLinkRecord
from runnel.store.variables import VariableRecord

from .conftest import NewExecution


def user(user_id: str, **fields: object) -> UserRecord:
    values: dict[str, object] = {"id": user_id, "role": "member", "created_at": 100.0}
    values.update(fields)
    return UserRecord(**values)  # type: ignore[arg-type]


def engine(engine_id: str, owner_id: str = "u1", **fields: object) -> EngineRecord:
    values: dict[str, object] = {
        "id": engine_id,
        "owner_id": owner_id,
        "name": f"engine {engine_id}",
        "token_sha256": f"digest-{engine_id}",
        "created_at": 10.0,
        "updated_at": 10.0,
    }
    values.update(fields)
    return EngineRecord(**values)  # type: ignore[arg-type]


async def test_a_signature_is_remembered_once_and_pruned(store: SqlStore) -> None:
    assert await store.remember_signature("d1", expires_at=100.0)
    assert not await store.remember_signature("d1", expires_at=100.0)
    assert await store.remember_signature("d2", expires_at=200.0)
    assert await store.prune_signatures(150.0) == 1
    # Pruned: the store forgets it (the time window refuses such a message anyway).
    assert await store.remember_signature("d1", expires_at=100.0)
    assert not await store.remember_signature("d2", expires_at=200.0)


async def test_engines_shares_and_authorized_addresses(store: SqlStore) -> None:
    await store.create_user(user("u1", address="0xowner"))
    await store.create_user(user("u2", address="0xfriend", display_name="Friend"))
    await store.create_user(user("u3"))
    await store.create_user(user("u4", address="0xgone", disabled=True))
    await store.create_engine(engine("e1"))
    await store.create_engine(engine("e2", created_at=20.0, updated_at=20.0))
    with pytest.raises(ConflictError):  # unknown owner
        await store.create_engine(engine("e3", owner_id="nobody"))
    with pytest.raises(ConflictError):  # same token digest
        await store.create_engine(engine("e4", token_sha256="digest-e1"))

    assert await store.get_engine("e1") == engine("e1")
    assert await store.engine_by_token_digest("digest-e2") == engine(
        "e2", created_at=20.0, updated_at=20.0
    )
    assert [e.id for e in await store.list_engines_owned_by("u1")] == ["e1", "e2"]

    assert await store.add_engine_share("e1", "u2", 30.0)
    assert not await store.add_engine_share("e1", "u2", 31.0)
    assert await store.add_engine_share("e1", "u3", 32.0)
    assert await store.add_engine_share("e1", "u4", 33.0)
    with pytest.raises(ConflictError):
        await store.add_engine_share("e1", "nobody", 34.0)
    assert await store.is_engine_shared_with("e1", "u2")
    assert not await store.is_engine_shared_with("e2", "u2")
    shares = await store.list_engine_shares("e1")
    assert [(s.user.id, s.user.username, s.user.address, s.shared_at) for s in shares] == [
        ("u2", "Friend", "0xfriend", 30.0),
        ("u3", None, None, 32.0),
        ("u4", None, "0xgone", 33.0),
    ]
    # The owner and shared users with an address, not disabled.
    assert await store.engine_authorized_addresses("e1") == ["0xfriend", "0xowner"]
    shared = await store.list_engines_shared_with("u2")
    assert [(s.engine.id, s.owner.id, s.owner.address, s.shared_at) for s in shared] == [
        ("e1", "u1", "0xowner", 30.0)
    ]

    assert await store.rename_engine("e1", "renamed", 40.0)
    assert await store.set_engine_token("e1", "digest-new", 41.0)
    assert await store.engine_by_token_digest("digest-e1") is None
    renamed = await store.get_engine("e1")
    assert renamed is not None
    assert (renamed.name, renamed.token_sha256, renamed.updated_at) == (
        "renamed",
        "digest-new",
        41.0,
    )
    assert await store.record_engine_seen("e1", 50.0, "http://10.0.0.5:3001")
    assert await store.record_engine_seen("e1", 60.0)
    seen = await store.get_engine("e1")
    assert seen is not None
    assert (seen.last_seen_at, seen.internal_api_url) == (60.0, "http://10.0.0.5:3001")

    assert await store.remove_engine_share("e1", "u3")
    assert not await store.remove_engine_share("e1", "u3")
    assert await store.delete_engine("e1")
    assert not await store.delete_engine("e1")
    assert await store.list_engines_shared_with("u2") == []
    assert not await store.rename_engine("e1", "x", 1.0)


async def test_one_embedded_engine_even_when_racing(store: SqlStore) -> None:
    await store.create_user(user("u1"))
    made = await asyncio.gather(
        *(
            store.create_embedded_engine(engine(f"e{n}", embedded=True, token_sha256=f"t{n}"))
            for n in range(5)
        )
    )
    assert len({e.id for e in made}) == 1
    embedded = await store.embedded_engine()
    assert embedded is not None
    assert embedded.embedded and embedded.id == made[0].id


async def test_claims_are_parked_with_the_rotation_and_taken_once(store: SqlStore) -> None:
    await store.create_user(user("u1"))
    await store.create_engine(engine("e1"))

    parked = await store.rotate_engine_token_for_claim("e1", "digest-2", 100.0, "r1", "s", 400.0)
    assert parked is ClaimOutcome.PARKED
    assert (await store.engine_by_token_digest("digest-2")) is not None
    # The request id is taken while its window is open: nothing changes.
    taken = await store.rotate_engine_token_for_claim("e1", "digest-3", 101.0, "r1", "s", 401.0)
    assert taken is ClaimOutcome.REQUEST_TAKEN
    assert (await store.engine_by_token_digest("digest-3")) is None

    claim = await store.take_engine_claim("r1", 200.0)
    assert claim is not None
    assert (claim.engine_id, claim.token_sealed, claim.expires_at) == ("e1", "s", 400.0)
    assert await store.take_engine_claim("r1", 200.0) is None

    # An expired claim is not handed out, and its request id can be used again.
    await store.rotate_engine_token_for_claim("e1", "digest-4", 500.0, "r2", "s", 800.0)
    assert await store.take_engine_claim("r2", 801.0) is None
    await store.rotate_engine_token_for_claim("e1", "digest-5", 900.0, "r3", "s", 1200.0)
    again = await store.rotate_engine_token_for_claim("e1", "digest-6", 1300.0, "r3", "t", 1600.0)
    assert again is ClaimOutcome.PARKED
    assert await store.prune_engine_claims(2000.0) == 1
    with pytest.raises(ConflictError):  # unknown engine
        await store.rotate_engine_token_for_claim("nope", "digest-7", 1.0, "r4", "s", 2.0)


async def test_share_links(store: SqlStore) -> None:
    await store.create_user(user("u1", address="0xowner", display_name="Owner"))
    await store.create_user(user("u2"))

    def link(link_id: str, created_at: float, **fields: object) -> ShareLinkRecord:
        values: dict[str, object] = {
            "id": link_id,
            "owner_id": "u1",
            "preset_name": "p",
            "permission": "view",
            "token_sha256": f"digest-{link_id}",
            "token_sealed": "sealed",
            "created_at": created_at,
            "updated_at": created_at,
        }
        values.update(fields)
        return ShareLinkRecord(**values)  # type: ignore[arg-type]

    await store.create_share_link(link("l1", 1.0, link_name="first"))
    await store.create_share_link(link("l2", 2.0))
    await store.create_share_link(link("l3", 3.0, preset_name="other"))
    assert [x.id for x in await store.list_share_links("u1", "p")] == ["l2", "l1"]
    found = await store.share_link_by_digest("digest-l1")
    assert found is not None
    assert found[0] == link("l1", 1.0, link_name="first")
    assert (found[1].id, found[1].address, found[1].username) == ("u1", "0xowner", "Owner")

    assert not await store.set_share_link_permission("l1", "u2", "view-run", 5.0)
    assert await store.set_share_link_permission("l1", "u1", "view-run", 5.0)
    changed = await store.get_share_link("l1")
    assert changed is not None
    assert (changed.permission, changed.updated_at) == ("view-run", 5.0)
    assert not await store.delete_share_link("l1", "u2")
    assert await store.delete_share_link("l1", "u1")
    assert await store.share_link_by_digest("digest-l1") is None


async def test_user_state_keys_and_their_limit(store: SqlStore) -> None:
    await store.create_user(user("u1"))
    assert await store.get_user_state("u1", "a") is None
    assert await store.put_user_state("u1", "a", '["x"]', 1.0, max_keys=2)
    assert await store.put_user_state("u1", "a", '["y"]', 2.0, max_keys=2)
    assert await store.put_user_state("u1", "b", "1", 3.0, max_keys=2)
    # A third key is refused; rewriting one of the two is not.
    assert not await store.put_user_state("u1", "c", "1", 4.0, max_keys=2)
    assert await store.put_user_state("u1", "b", "2", 5.0, max_keys=2)
    assert await store.get_user_state("u1", "a") == '["y"]'
    assert await store.list_user_state_keys("u1") == ["a", "b"]
    assert await store.delete_user_state("u1", "a")
    assert not await store.delete_user_state("u1", "a")
    with pytest.raises(ConflictError):
        await store.put_user_state("nobody", "a", "1", 1.0, max_keys=2)


async def test_the_kill_switch_list(store: SqlStore) -> None:
    assert await store.list_disabled_components() == []
    assert await store.disable_component(DisabledComponent("http.request", 1.0, "risky", "ops"))
    assert not await store.disable_component(DisabledComponent("http.request", 2.0))
    assert await store.disable_component(DisabledComponent("debug.log", 3.0))
    listed = await store.list_disabled_components()
    assert [(c.component_id, c.reason) for c in listed] == [
        ("debug.log", None),
        ("http.request", "risky"),
    ]
    assert await store.enable_component("debug.log")
    assert not await store.enable_component("debug.log")
    await store.replace_disabled_components(
        [DisabledComponent("a", 5.0), DisabledComponent("b", 5.0)]
    )
    assert [c.component_id for c in await store.list_disabled_components()] == ["a", "b"]


async def test_presets_append_versions_in_order(store: SqlStore) -> None:
    heads: list[PresetHead | None] = []

    def make(head: PresetHead | None) -> PresetVersionRecord:
        heads.append(head)
        version = 1 if head is None else head.version + 1
        return PresetVersionRecord(
            owner="0xa",
            name="p",
            version=version,
            author="0xa",
            created_at=float(version),
            hash=f"h{version}",
            workflow_data="{}",
            previous_hash=None if head is None else head.hash,
        )

    first = await store.append_preset_version("0xa", "p", make)
    second = await store.append_preset_version("0xa", "p", make)
    assert (first.version, second.version, second.previous_hash) == (1, 2, "h1")
    assert heads == [None, PresetHead(1, "h1")]
    assert [v.version for v in await store.preset_versions("0xa", "p")] == [1, 2]
    summaries = await store.list_presets("0xa")
    assert [(s.name, s.latest_version, s.updated_at) for s in summaries] == [("p", 2, 2.0)]
    assert await store.list_presets("0xb") == []
    assert await store.preset_exists("0xa", "p")
    assert await store.delete_preset("0xa", "p")
    assert not await store.delete_preset("0xa", "p")
    assert not await store.preset_exists("0xa", "p")


async def test_variables_and_their_turns(store: SqlStore) -> None:
    record = VariableRecord(
        owner="0xa",
        name="V",
        mode="sequential",
        is_secret=False,
        is_enabled=True,
        payload='{"values":[1,2]}',
        updated_at=1.0,
    )
    await store.put_variable(record)
    assert await store.get_variable("0xa", "V") == record
    assert [await store.advance_variable_sequence("0xa", "V") for _ in range(3)] == [0, 1, 2]
    # Saving starts the turns over.
    await store.put_variable(record)
    assert await store.advance_variable_sequence("0xa", "V") == 0
    assert await store.advance_variable_sequence("0xa", "NONE") is None
    assert [v.name for v in await store.list_variables("0xa")] == ["V"]
    assert await store.delete_variable("0xa", "V")
    assert not await store.delete_variable("0xa", "V")


async def test_dashboard_tallies(store: SqlStore, new_execution: NewExecution) -> None:
    await new_execution(
        "a",
        status=ExecutionStatus.SUCCEEDED,
        created_at=100.0,
        started_at=100.0,
        finished_at=102.0,
    )
    await new_execution(
        "b",
        status=ExecutionStatus.SUCCEEDED,
        created_at=200.0,
        started_at=200.0,
        finished_at=201.0,
    )
    await new_execution("c", status=ExecutionStatus.RUNNING, created_at=300.0, started_at=300.0)
    await new_execution("d", status=ExecutionStatus.FAILED, created_at=50.0)
    tally = await store.tally_executions_since(100.0)
    assert set(tally) == {"succeeded", "running"}
    assert (tally["succeeded"].count, tally["succeeded"].timed) == (2, 2)
    assert tally["succeeded"].total_seconds == pytest.approx(3.0)
    assert (tally["running"].count, tally["running"].timed) == (1, 0)
    assert await store.count_executions_with_status("running") == 1
