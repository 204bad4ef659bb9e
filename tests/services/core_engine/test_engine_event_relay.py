"""Engine events between processes over PostgreSQL NOTIFY (``PostgresEngineEventRelay``):
two ``FloworkServices`` on one database stand for two API processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dbfixtures import FakeClock, postgres_database
from flowork_keys import Wallet
from runnel.auth.signatures import SignedMessage
from runnel.engine.registry import default_registry
from runnel.engine.services import NodeServices
from runnel.services.engine_event_relay import decode_event, encode_event
from runnel.services.engine_events import (
    AuthListChanged,
    EngineDeleted,
    EngineDisconnected,
    EngineEvent,
    EngineRenamed,
    EngineTokenReset,
    KillSwitchChanged,
)
from runnel.services.flowork import FloworkServices
from runnel.store import SqlStore

KEY = b"instance-key-for-the-relay-tests"
WAIT = 10.0


def test_events_round_trip_through_a_payload() -> None:
    for event in (
        AuthListChanged("e1"),
        EngineTokenReset("e1"),
        EngineDeleted("e1"),
        EngineRenamed("e1", "new name"),
        KillSwitchChanged(("a", "b")),
        EngineDisconnected("e1", 1_700_000_000.25),
    ):
        assert decode_event(encode_event(event, "me")) == ("me", event, True)
    # A list too long for one notification is left for the receiver to read.
    long = KillSwitchChanged(tuple(f"component_{i}" for i in range(2000)))
    payload = encode_event(long, "me")
    assert len(payload.encode()) < 8000
    assert decode_event(payload) == ("me", KillSwitchChanged(()), False)
    assert decode_event('{"o": "x", "k": "later"}') == ("x", None, True)
    with pytest.raises(ValueError, match="not an engine event"):
        decode_event('{"k": "auth"}')


class Process:
    """One "API process": its own store connection pool and Flowork services."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        self.store = SqlStore.open(url)
        self.flowork = FloworkServices(
            self.store, default_registry(), NodeServices(), KEY, clock=clock
        )
        self.heard: asyncio.Queue[EngineEvent] = asyncio.Queue()

        async def record(event: EngineEvent) -> None:
            await self.heard.put(event)

        self.flowork.events.listen(record)

    async def next(self) -> EngineEvent:
        return await asyncio.wait_for(self.heard.get(), WAIT)

    async def close(self) -> None:
        await self.flowork.stop()
        await self.store.close()


@pytest.fixture
async def processes() -> AsyncIterator[tuple[Process, Process]]:
    for url in postgres_database():
        clock = FakeClock()
        a, b = Process(url, clock), Process(url, clock)
        try:
            await a.flowork.start()
            await b.flowork.start()
            yield a, b
        finally:
            await a.close()
            await b.close()


async def sign_in(flowork: FloworkServices, wallet: Wallet) -> str:
    text = f"flowork_api_auth|{wallet.address}|{int(flowork.engines.now())}"
    signed = SignedMessage(wallet.address, text, wallet.sign(text))
    return (await flowork.identities.sign_in(signed)).id


@pytest.mark.postgres
async def test_a_change_on_one_process_reaches_the_other(
    processes: tuple[Process, Process],
) -> None:
    a, b = processes
    owner, friend = Wallet(), Wallet()
    owner_id = await sign_in(a.flowork, owner)
    friend_id = await sign_in(a.flowork, friend)
    engine, _ = await a.flowork.engines.register(owner_id, "shared")

    async def both_hear(expected: EngineEvent) -> None:
        assert await a.next() == expected
        assert await b.next() == expected

    await a.flowork.sharing.share(owner_id, engine.id, friend.address)
    await both_hear(AuthListChanged(engine.id))
    # B delivers to the friend (and remembers that)...
    assert await b.flowork.access_cache.may_use(friend_id, engine.id)
    assert b.flowork.access_cache.may_use_now(friend_id, engine.id) is True
    # ...until A revokes: B forgets before its listeners hear of it.
    await a.flowork.sharing.revoke(owner_id, engine.id, friend_id)
    await both_hear(AuthListChanged(engine.id))
    assert b.flowork.access_cache.may_use_now(friend_id, engine.id) is None
    assert not await b.flowork.access_cache.may_use(friend_id, engine.id)

    await b.flowork.engines.reset_token(owner_id, engine.id)
    await both_hear(EngineTokenReset(engine.id))
    await a.flowork.engines.rename(owner_id, engine.id, "renamed")
    await both_hear(EngineRenamed(engine.id, "renamed"))

    # The kill switch: B's executor applies it at once, B's listeners hear the list.
    b.flowork.kill_switch.node_services.disabled_types = frozenset()
    await a.flowork.kill_switch.disable("debug_popup_module")
    heard = await b.next()
    assert isinstance(heard, KillSwitchChanged) and "debug_popup_module" in heard.component_ids
    assert await a.next() == heard
    assert b.flowork.kill_switch.node_services.disabled_types

    await a.flowork.engines.delete(owner_id, engine.id)
    await both_hear(EngineDeleted(engine.id))
    # Each process heard each event once: its own were not relayed back to it.
    await asyncio.sleep(0.2)
    assert a.heard.empty() and b.heard.empty()
