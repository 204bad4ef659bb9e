"""The bus between processes (PostgreSQL LISTEN/NOTIFY): events packed several to a
notification arrive whole and in order, with large ones split, and work notices between."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from dbfixtures import postgres_database
from runnel.bus.memory import Lagged
from runnel.bus.postgres import PostgresBus
from runnel.model.events import Event, EventType
from runnel.store import codec

pytestmark = pytest.mark.postgres


def _encode(event: Event) -> str:
    return codec.dumps(codec.event_to_dict(event))


def _decode(text: str) -> Event:
    return codec.event_from_dict(codec.loads(text))


@pytest.fixture
def conninfo() -> Iterator[str]:
    for url in postgres_database():
        yield url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
async def buses(conninfo: str) -> AsyncIterator[tuple[PostgresBus, PostgresBus]]:
    sender = PostgresBus(conninfo, encode=_encode, decode=_decode, listen_events=False)
    receiver = PostgresBus(conninfo, encode=_encode, decode=_decode)
    await sender.start()
    await receiver.start()
    try:
        yield sender, receiver
    finally:
        await sender.close()
        await receiver.close()


def _event(seq: int, **data: object) -> Event:
    return Event(
        execution_id="x1",
        seq=seq,
        type=EventType.NODE_FINISHED,
        timestamp=time.time(),
        workflow_id="wf",
        node_id=f"n{seq}",
        data=dict(data),
    )


async def test_events_arrive_in_order_whatever_their_size(
    buses: tuple[PostgresBus, PostgresBus],
) -> None:
    sender, receiver = buses
    woken = asyncio.Event()
    receiver.on_work = woken.set
    subscription = receiver.subscribe(execution_id="x1")
    sent = []
    for seq in range(1, 401):
        if seq % 50 == 0:
            data: dict[str, object] = {"big": "é" * 6000}  # past one notification: in parts
        elif seq % 7 == 0:
            data = {"text": "line one\nline two | and a pipe", "unicode": "日本語"}
        else:
            data = {"value": seq}
        event = _event(seq, **data)
        sent.append(event)
        sender.publish(event)
        if seq == 200:
            sender.notify_work()

    received = []
    async with asyncio.timeout(20):
        async for item in subscription:
            assert not isinstance(item, Lagged)
            received.append(item)
            if len(received) == len(sent):
                break
    subscription.close()
    assert [(e.seq, e.data) for e in received] == [(e.seq, e.data) for e in sent]
    assert woken.is_set()


async def test_events_are_packed_into_few_notifications(
    buses: tuple[PostgresBus, PostgresBus],
) -> None:
    sender, receiver = buses
    notes = 0
    original = receiver._receive

    async def counting(channel: str, payload: str) -> None:
        nonlocal notes
        notes += 1
        assert len(payload.encode()) < 8000
        await original(channel, payload)

    receiver._receive = counting  # type: ignore[method-assign]
    subscription = receiver.subscribe(execution_id="x1")
    for seq in range(1, 201):
        sender.publish(_event(seq, value="x" * 100))
    received = 0
    async with asyncio.timeout(20):
        async for _ in subscription:
            received += 1
            if received == 200:
                break
    subscription.close()
    # About 250 bytes an event: some 30 to a notification, far fewer than one each.
    assert notes <= 20
