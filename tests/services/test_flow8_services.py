"""The flow8 use cases on a real store (SQLite, and PostgreSQL when
``RUNNEL_TEST_POSTGRES_URL`` is set): the one permission check, flows as chains, sessions
and the sign-in throttle, KV scopes and expiry, sealed channel credentials."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runnel.model.execution import ExecutionStatus, NodeStatus
from runnel.model.flow8 import PLAY_STATE_RULES, PlayState, layer_state, play_state
from runnel.model.workflow import OnError
from runnel.platform import Platform, PlatformConfig
from runnel.services.access import Action, GroupRole, Resource, allows
from runnel.services.accounts import Principal, Role
from runnel.services.channels import MASK, ChannelService, DeliveryFailed
from runnel.services.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from runnel.services.flows import (
    FlowletSpec,
    FlowSpec,
    RetrySpec,
    flow_from_workflow,
    workflow_from_flow,
)
from runnel.services.groups import MemberSpec
from runnel.services.kv import KvService, KvView
from runnel.services.sessions import LoginThrottle, SessionService, TooManyAttempts
from scheduler.conftest import FakeClock, database_url  # noqa: F401

ALICE = Principal("alice", Role.MEMBER)


@pytest.fixture
async def platform(database_url: str, tmp_path: Path) -> AsyncIterator[Platform]:  # noqa: F811
    opened = await Platform.open(
        PlatformConfig(data_dir=tmp_path / "data", database_url=database_url, worker=False)
    )
    try:
        yield opened
    finally:
        await opened.stop()


async def user(platform: Platform, name: str) -> Principal:
    info = await platform.accounts.create_user(f"{name}@example.com", "password123")
    return Principal(info.id, Role.MEMBER)


# -- the permission check -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (GroupRole.VIEWER, {Action.VIEW}),
        (GroupRole.RUNNER, {Action.VIEW, Action.RUN}),
        (GroupRole.EDITOR, {Action.VIEW, Action.RUN, Action.EDIT}),
        (GroupRole.OWNER, set(Action)),
    ],
)
def test_roles_allow_what_the_table_says(role: GroupRole, allowed: set[Action]) -> None:
    flow = Resource("flow", "f", owner="someone", group_id="g")
    for action in Action:
        assert allows(ALICE, {"g": role}, flow, action) is (action in allowed)
    assert not allows(ALICE, {"other": GroupRole.OWNER}, flow, Action.VIEW)
    assert allows(ALICE, {}, Resource("flow", "f", owner="alice"), Action.EDIT)
    assert allows(Principal("root", Role.ADMIN), {}, flow, Action.MANAGE)


async def test_access_check_hides_or_forbids(platform: Platform) -> None:
    owner, viewer, stranger = [await user(platform, n) for n in ("own", "view", "strange")]
    group = await platform.flow8.groups.create(
        owner, "g", members=[MemberSpec("viewer", user_id=viewer.user_id)]
    )
    resource = Resource("flow", "f1", owner=owner.user_id, group_id=group.id)
    access = platform.flow8.access
    await access.check(viewer, resource, Action.VIEW)
    with pytest.raises(Forbidden):
        await access.check(viewer, resource, Action.RUN)
    with pytest.raises(NotFound) as hidden:
        await access.check(stranger, resource, Action.VIEW)
    assert hidden.value.kind == "flow" and hidden.value.ident == "f1"


# -- states ---------------------------------------------------------------------------------


def test_every_execution_status_has_exactly_one_play_state() -> None:
    for status in ExecutionStatus:
        for runs in (
            [],
            [(NodeStatus.FILTERED, None)],
            [(NodeStatus.WAITING, None)],
            [(NodeStatus.WAITING, {"kind": "timer", "due_at": 1})],
        ):
            matching = [
                state
                for state, rule in PLAY_STATE_RULES.items()
                if status in rule.statuses and play_state(status, runs) is state
            ]
            assert len(matching) == 1
    assert (
        play_state(ExecutionStatus.SUCCEEDED, [(NodeStatus.FILTERED, None)]) is PlayState.FILTERED
    )
    assert play_state(ExecutionStatus.WAITING, [(NodeStatus.WAITING, {"kind": "timer"})]) is (
        PlayState.DEFERRED
    )
    assert play_state(ExecutionStatus.CANCELLED) is PlayState.FAIL
    assert play_state(ExecutionStatus.PAUSED) is PlayState.ON_HOLD
    assert layer_state(NodeStatus.FAILED, skip_on_error=True) is PlayState.SKIP
    assert layer_state(NodeStatus.PENDING) is PlayState.NEW


# -- flows ----------------------------------------------------------------------------------


def test_a_flow_is_a_chain_and_reads_back_as_it_went_in(platform: Platform) -> None:
    spec = FlowSpec(
        name="Chain",
        category="c",
        flowlets=(
            FlowletSpec(
                ref="get",
                app_id="curl",
                args={"url": "https://x"},
                id="1",
                retry=RetrySpec(2, 10, 100, 2.0, 0.1),
                timeout_ms=500,
                on_error="skip",
            ),
            FlowletSpec(
                ref="set",
                app_id="transform.set",
                id="2",
                defer_after_ms=5,
                needs_approval=True,
                skip_output_mapping=True,
                filters={"and": [True]},
            ),
            FlowletSpec(ref="wait", app_id="delay", args={"delay_ms": 1}, id="3"),
        ),
    )
    workflow = workflow_from_flow(
        "f", spec, platform.registry, owner="o", created_at=1.0, updated_at=2.0
    )
    assert [n.type for n in workflow.nodes] == ["http.request", "transform.set", "time.delay"]
    assert workflow.nodes[0].on_error is OnError.CONTINUE
    assert workflow.nodes[0].retry is not None and workflow.nodes[0].retry.max_attempts == 3
    assert [(e.source, e.source_port, e.target, e.target_port) for e in workflow.edges] == [
        ("1", "body", "2", "value"),
        ("1", "error", "2", "value"),
        ("2", "value", "3", "value"),
    ]
    platform.workflows.check(workflow)  # valid for the engine
    back = flow_from_workflow(workflow)
    assert back.spec == spec and back.chain is True
    assert (back.owner, back.created_at, back.updated_at) == ("o", 1.0, 2.0)


async def test_saving_keeps_flowlet_ids_by_id_or_ref(platform: Platform) -> None:
    alice = await user(platform, "alice")
    flows = platform.flow8.flows
    flow = await flows.create(
        alice, FlowSpec("F", flowlets=(FlowletSpec("a", "set"), FlowletSpec("b", "set")))
    )
    ids = [f.id for f in flow.spec.flowlets]
    again = await flows.update(
        alice, flow.id, FlowSpec("F", flowlets=(FlowletSpec("b", "set"), FlowletSpec("a", "set")))
    )
    assert [f.id for f in again.spec.flowlets] == ids[::-1] and again.version == 2
    with pytest.raises(InvalidInput, match="unknown appId 'nope'"):
        await flows.create(alice, FlowSpec("G", flowlets=(FlowletSpec("a", "nope"),)))
    with pytest.raises(NotFound):
        await flows.get(await user(platform, "eve"), flow.id)


# -- sessions -------------------------------------------------------------------------------


async def test_sessions_login_logout_and_expiry(platform: Platform) -> None:
    await platform.accounts.create_user("s@example.com", "password123")
    clock = FakeClock(1_000.0)
    sessions = SessionService(
        platform.store,
        platform.accounts,
        b"k" * 32,
        clock=clock,
        idle_seconds=100.0,
        max_age_seconds=1000.0,
    )
    signed = await sessions.login("S@example.com", "password123")
    principal = await sessions.authenticate(signed.token)
    assert principal.user_id == signed.user.id and principal.key_id is None
    clock.now += 99
    await sessions.authenticate(signed.token)  # slides the idle expiry
    clock.now += 99
    await sessions.authenticate(signed.token)
    clock.now += 150
    with pytest.raises(Unauthorized):
        await sessions.authenticate(signed.token)
    fresh = await sessions.login("s@example.com", "password123", previous_token=signed.token)
    assert await sessions.logout(fresh.token)
    with pytest.raises(Unauthorized):
        await sessions.authenticate(fresh.token)
    row = await platform.store.session_for_auth(fresh.token)
    assert row is None  # the store holds a keyed digest, never the cookie


async def test_failed_logins_are_slowed_then_refused(platform: Platform) -> None:
    await platform.accounts.create_user("t@example.com", "password123")
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    moment = FakeClock(0.0)
    throttle = LoginThrottle(free_attempts=2, max_failures=5, window_seconds=60, clock=moment)
    sessions = SessionService(
        platform.store, platform.accounts, b"k" * 32, throttle=throttle, sleep=sleep
    )
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await sessions.login("t@example.com", "wrong-password", client="10.0.0.1")
    assert waited == [0.25, 0.5, 1.0]
    with pytest.raises(TooManyAttempts):
        await sessions.login("t@example.com", "password123", client="10.0.0.2")
    with pytest.raises(TooManyAttempts):  # the address is throttled for other emails too
        await sessions.login("other@example.com", "x", client="10.0.0.1")
    moment.now = 61
    assert (await sessions.login("t@example.com", "password123")).user.email == "t@example.com"


# -- KV ---------------------------------------------------------------------------------


async def test_kv_expiry_limits_and_view(platform: Platform) -> None:
    alice = await user(platform, "kv")
    clock = FakeClock(100.0)
    kv = KvService(platform.store, platform.flow8.access, max_value_bytes=50, clock=clock)
    entry = await kv.put(alice, "a.b", {"x": 1}, ttl_seconds=10)
    await kv.put(alice, "a", 5)
    clock.now = 109
    assert [e.key for e in (await kv.list(alice))[0]] == ["a", "a.b"]
    clock.now = 111
    assert [e.key for e in (await kv.list(alice))[0]] == ["a"]
    with pytest.raises(NotFound):
        await kv.delete(alice, entry.id)
    with pytest.raises(InvalidInput, match="limit is 50"):
        await kv.put(alice, "big", "x" * 100)
    view = KvView({"flow.step": {"v": 1}, "flow": 0, "other.x.y": 2})
    assert view["flow"] == 0 and view["flow.step"] == {"v": 1}
    assert view["other"]["x"]["y"] == 2
    assert sorted(view) == ["flow", "flow.step", "other.x.y"]
    assert dict(view["other"]) == {"x.y": 2}


# -- channels -------------------------------------------------------------------------------


async def test_channel_credentials_are_sealed_in_the_store(platform: Platform) -> None:
    alice = await user(platform, "ch")
    channels: ChannelService = platform.flow8.channels
    channel = await channels.create(
        alice, "hook", "webhook", {"url": "https://example.com/h", "secret": "s3cr3t-value"}
    )
    assert channel.settings["secret"] == MASK
    record = await platform.store.get_channel(channel.id)
    assert record is not None and "s3cr3t-value" not in record.secret + str(record.config)
    # The seal is bound to its row: copied to another channel it does not open.
    other = await channels.create(alice, "other", "slack", {"webhookUrl": "https://h.example"})
    other_record = await platform.store.get_channel(other.id)
    assert other_record is not None
    swapped = dataclasses.replace(
        other_record, type="webhook", config=record.config, secret=record.secret
    )
    with pytest.raises(DeliveryFailed):
        channels._secret(swapped)
    updated = await channels.update(alice, channel.id, settings={"secret": MASK})
    assert updated.settings["secret"] == MASK
    stored = await platform.store.get_channel(channel.id)
    assert stored is not None and channels._secret(stored)["secret"] == "s3cr3t-value"
