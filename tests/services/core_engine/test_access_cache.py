"""Who may use an engine, remembered for the realtime deliveries (``EngineAccessCache``),
and the engine status read from the live gateway connections (``EngineService.links``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from dbfixtures import FakeClock
from flowork_keys import Wallet
from runnel.auth.signatures import SignedMessage
from runnel.engine.registry import default_registry
from runnel.engine.services import NodeServices
from runnel.services.core_engine import GatewayStoreAuthority
from runnel.services.engine_access_cache import AccessCache
from runnel.services.engines import ONLINE_SECONDS, EngineLinkState
from runnel.services.flowork import FloworkServices
from runnel.store import SqlStore

KEY = b"instance-key-for-the-access-cache-tests"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flowork(store: SqlStore, clock: FakeClock) -> FloworkServices:
    return FloworkServices(store, default_registry(), NodeServices(), KEY, clock=clock)


async def sign_in(flowork: FloworkServices, wallet: Wallet, clock: FakeClock) -> str:
    clock.now += 1
    text = f"flowork_api_auth|{wallet.address}|{int(clock.now)}"
    signed = SignedMessage(wallet.address, text, wallet.sign(text))
    return (await flowork.identities.sign_in(signed)).id


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_kept_for_the_ttl_and_forgotten_per_engine() -> None:
    ticks = Ticks()
    cache: AccessCache[str, bool] = AccessCache(1.0, clock=ticks)
    reads: list[str] = []

    async def read(value: bool) -> bool:
        reads.append("read")
        return value

    assert await cache.load("e1", "u", lambda: read(True)) is True
    assert await cache.load("e1", "u", lambda: read(False)) is True  # remembered
    assert len(reads) == 1
    ticks.now = 1.0
    assert await cache.load("e1", "u", lambda: read(False)) is False  # expired: read again
    assert await cache.load("e2", "u", lambda: read(True)) is True
    cache.forget("e1")
    assert cache.get("e1", "u") == (False, None)
    assert cache.get("e2", "u") == (True, True)  # another engine's answer stays
    cache.forget_all()
    assert cache.get("e2", "u") == (False, None)


async def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    cache: AccessCache[str, bool] = AccessCache(60.0, clock=Ticks())
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_read() -> bool:
        started.set()
        await release.wait()
        return True  # what the store said before the revoke

    reading = asyncio.create_task(cache.load("e1", "u", slow_read))
    await started.wait()
    cache.forget("e1")  # the revoke was announced meanwhile
    release.set()
    assert await reading is True
    assert cache.get("e1", "u") == (False, None)  # the next delivery reads again


async def test_a_revoke_counts_at_once_for_deliveries(
    flowork: FloworkServices, clock: FakeClock
) -> None:
    owner, friend = Wallet(), Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    friend_id = await sign_in(flowork, friend, clock)
    engine, _ = await flowork.engines.register(owner_id, "cached")
    cache = flowork.access_cache
    authority = GatewayStoreAuthority(flowork.engines, engine.id)

    assert not await cache.may_use(friend_id, engine.id)
    assert not await authority.is_authorized(friend.lower)
    await flowork.sharing.share(owner_id, engine.id, friend.address)
    # Sharing is announced: the remembered "no" is gone at once.
    assert cache.may_use_now(friend_id, engine.id) is None
    assert await cache.may_use(friend_id, engine.id)
    assert await authority.is_authorized(friend.lower)
    assert cache.may_use_now(friend_id, engine.id) is True
    await flowork.sharing.revoke(owner_id, engine.id, friend_id)
    assert cache.may_use_now(friend_id, engine.id) is None
    assert not await cache.may_use(friend_id, engine.id)
    assert not await authority.is_authorized(friend.lower)
    assert await cache.may_use(owner_id, engine.id)

    # A change nobody announced (another process, an edit of the store) counts once the
    # remembered answer expired.
    await flowork.engines.store.add_engine_share(engine.id, friend_id, clock.now)
    assert not await cache.may_use(friend_id, engine.id)
    cache.forget()
    assert await cache.may_use(friend_id, engine.id)
    await flowork.engines.delete(owner_id, engine.id)
    assert not await cache.may_use(friend_id, engine.id)
    assert not await cache.may_use(owner_id, engine.id)


@dataclass
class Links:
    exclusive: bool
    states: dict[str, EngineLinkState] = field(default_factory=dict)

    def link_state(self, engine_id: str) -> EngineLinkState | None:
        return self.states.get(engine_id)


async def test_the_status_comes_from_the_live_connection(
    flowork: FloworkServices, clock: FakeClock
) -> None:
    owner = Wallet()
    owner_id = await sign_in(flowork, owner, clock)
    engines = flowork.engines
    engine, _ = await engines.register(owner_id, "remote")
    assert not (await engines.get(engine.id)).online
    await engines.record_seen(engine.id)
    assert (await engines.get(engine.id)).online  # no gateway here: last seen

    # One process (SQLite): its connections are the whole truth.
    links = Links(exclusive=True)
    engines.links = links
    assert not (await engines.get(engine.id)).online
    links.states[engine.id] = EngineLinkState(linked=True)
    assert (await engines.get(engine.id)).online
    assert (await engines.list_owned(owner_id))[0].online
    links.states[engine.id] = EngineLinkState(linked=False, ended_at=clock.now)
    assert not (await engines.get(engine.id)).online

    # Several processes: not linked here, it may be linked to another one.
    links.exclusive = False
    assert not (await engines.get(engine.id)).online  # it left here after it was seen
    clock.now += 1
    await engines.record_seen(engine.id)  # another process sees it since
    assert (await engines.get(engine.id)).online
    del links.states[engine.id]  # never connected here: last seen
    assert (await engines.get(engine.id)).online
    clock.now += ONLINE_SECONDS
    assert not (await engines.get(engine.id)).online
    links.states[engine.id] = EngineLinkState(linked=True)
    assert (await engines.get(engine.id)).online
