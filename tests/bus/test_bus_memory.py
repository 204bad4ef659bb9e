"""The in-process bus: fan-out, filters, bounded queues with ``Lagged``, closing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

import pytest

from runnel.bus import (
    Bus,
    EncodeCache,
    Lagged,
    MemoryBus,
    Subscription,
    SubscriptionClosed,
)
from runnel.engine.ports import EventSink
from runnel.model import Event, EventType


def event(execution_id: str = "ex", seq: int = 1, workflow_id: str = "wf") -> Event:
    return Event(
        execution_id=execution_id,
        seq=seq,
        type=EventType.NODE_EVENT,
        timestamp=1.0,
        workflow_id=workflow_id,
        node_id="n",
        data={"kind": "info", "message": f"#{seq}"},
    )


def drain(subscription: Subscription) -> list[Event | Lagged]:
    items: list[Event | Lagged] = []
    while (item := subscription.get_nowait()) is not None:
        items.append(item)
    return items


def test_memory_bus_is_a_bus_and_an_event_sink() -> None:
    bus: Bus = MemoryBus()
    sink: EventSink = bus
    sink.publish(event())  # nobody listens: nothing happens


async def test_subscribers_get_every_event_in_order() -> None:
    bus = MemoryBus()
    first = bus.subscribe()
    second = bus.subscribe()
    published = [event(seq=n) for n in range(1, 6)]
    for item in published:
        bus.publish(item)
    assert [await first.get(1) for _ in range(5)] == published
    received = drain(second)
    assert received == published
    # The same object to everyone: what makes encoding once per format possible.
    assert all(a is b for a, b in zip(published, received, strict=True))


async def test_filters_by_execution_and_workflow() -> None:
    bus = MemoryBus()
    by_execution = bus.subscribe(execution_id="e1")
    by_workflow = bus.subscribe(workflow_id="w1")
    by_both = bus.subscribe(execution_id="e1", workflow_id="w2")
    everything = bus.subscribe()
    events = [
        event("e1", 1, "w1"),
        event("e2", 1, "w1"),
        event("e3", 1, "w2"),
        event("e1", 2, "w1"),
    ]
    for item in events:
        bus.publish(item)
    assert drain(by_execution) == [events[0], events[3]]
    assert drain(by_workflow) == [events[0], events[1], events[3]]
    assert drain(by_both) == []
    assert drain(everything) == events


async def test_a_waiting_consumer_is_woken_by_publish() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe()
    received: list[Event | Lagged] = []

    async def consume() -> None:
        async for item in subscription:
            received.append(item)
            if len(received) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for seq in (1, 2, 3):
        bus.publish(event(seq=seq))
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 1)
    assert [item.seq for item in received if isinstance(item, Event)] == [1, 2, 3]


async def test_a_slow_subscriber_gets_lagged_with_the_exact_count_and_never_blocks() -> None:
    bus = MemoryBus()
    slow = bus.subscribe(max_queue=100)
    fast = bus.subscribe(max_queue=5000)
    total = 1500
    started = time.perf_counter()
    for seq in range(1, total + 1):
        bus.publish(event("e1" if seq % 2 else "e2", seq))
    elapsed = time.perf_counter() - started
    # Synchronous and cheap: 1,500 publishes with a full queue take well under a second.
    assert elapsed < 0.5

    items = drain(slow)
    assert [item.seq for item in items[:100] if isinstance(item, Event)] == list(range(1, 101))
    assert items[100:] == [Lagged(missed=1400, execution_ids=frozenset({"e1", "e2"}))]
    assert slow.missed_total == 1400
    assert slow.delivered == 100

    # After the Lagged item, live events flow again.
    bus.publish(event("e1", total + 1))
    assert drain(slow) == [event("e1", total + 1)]
    # Another subscriber lost nothing.
    assert len(drain(fast)) == total + 1


async def test_lagged_comes_after_the_queued_events_and_marks_one_gap() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(max_queue=3)
    for seq in range(1, 6):  # 1-3 queued, 4-5 missed
        bus.publish(event(seq=seq))
    assert (await subscription.get(1)) == event(seq=1)
    # Room in the queue again, but the subscriber is still behind: counted, not queued,
    # so that everything before the Lagged item stays gap-free.
    bus.publish(event(seq=6))
    assert drain(subscription) == [
        event(seq=2),
        event(seq=3),
        Lagged(missed=3, execution_ids=frozenset({"ex"})),
    ]


async def test_default_queue_with_more_than_a_thousand_events() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe()
    for seq in range(1, 2001):
        bus.publish(event(seq=seq))
    items = drain(subscription)
    assert len(items) == 1025
    assert items[-1] == Lagged(missed=976, execution_ids=frozenset({"ex"}))


async def test_close_unsubscribes_and_ends_iteration() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(execution_id="e1")
    other = bus.subscribe(workflow_id="wf")
    assert bus.subscriber_count == 2

    waiting = asyncio.create_task(subscription.get())
    await asyncio.sleep(0)
    subscription.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(waiting, 1)
    subscription.close()  # idempotent
    assert subscription.closed
    assert bus.subscriber_count == 1

    bus.publish(event("e1", 1))
    assert subscription.get_nowait() is None
    async with other:
        pass
    assert bus.subscriber_count == 0
    assert [item async for item in other] == []


async def test_bus_close_lets_consumers_read_what_is_queued() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe()
    bus.publish(event(seq=1))
    await bus.close()
    await bus.close()
    assert [item async for item in subscription] == [event(seq=1)]
    late = bus.subscribe()
    assert late.closed
    assert [item async for item in late] == []
    assert bus.subscriber_count == 0


async def test_get_with_a_timeout() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe()
    assert await subscription.get(timeout=0.01) is None
    bus.publish(event())
    assert await subscription.get(timeout=0.01) == event()
    assert subscription.pending == 0
    subscription.close()
    with pytest.raises(SubscriptionClosed):
        await subscription.get(timeout=0.01)


def test_publish_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus()
    broken = bus.subscribe()

    class Exploding(deque[Event]):
        def append(self, _item: Event) -> None:
            raise RuntimeError("boom")

    broken._queue = Exploding()
    after = bus.subscribe(execution_id="ex")
    with caplog.at_level(logging.ERROR, logger="runnel.bus.memory"):
        bus.publish(event())
    assert "publishing node.event failed" in caplog.text
    # The rest of that event's fan-out is lost, not the bus: the next one goes through.
    broken.close()
    bus.publish(event(seq=2))
    assert drain(after) == [event(seq=2)]


def test_max_queue_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        MemoryBus().subscribe(max_queue=0)


def test_encode_cache_encodes_once_per_event_and_format() -> None:
    cache = EncodeCache(max_entries=3)
    calls: list[tuple[int, str]] = []

    def encoder(name: str) -> Callable[[Event], str]:
        def encode(item: Event) -> str:
            calls.append((item.seq, name))
            return f"{name}:{item.seq}"

        return encode

    one = event(seq=1)
    for _ in range(10):  # ten subscribers
        assert cache.encode(one, "a", encoder("a")) == "a:1"
    assert cache.encode(one, "b", encoder("b")) == "b:1"
    assert calls == [(1, "a"), (1, "b")]
    assert (cache.hits, cache.misses) == (9, 2)

    # An equal-keyed but different object (reloaded from the store) is encoded afresh.
    again = event(seq=1)
    cache.encode(again, "a", encoder("a"))
    assert calls[-1] == (1, "a")
    assert len(cache) == 2

    for seq in range(2, 6):
        cache.encode(event(seq=seq), "a", encoder("a"))
    assert len(cache) == 3
    with pytest.raises(ValueError, match="max_entries"):
        EncodeCache(0)


async def test_async_for_reads_queued_events_then_lagged_then_live_ones() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe(max_queue=2)
    for seq in range(1, 5):  # 1-2 queued, 3-4 missed
        bus.publish(event(seq=seq))
    items: list[object] = []

    async def consume() -> None:
        async for item in subscription:
            items.append(item)
            if len(items) == 4:
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)  # it reads what is queued, then waits
    bus.publish(event(seq=5))  # wakes it
    await asyncio.wait_for(consumer, 1)
    assert items == [
        event(seq=1),
        event(seq=2),
        Lagged(missed=2, execution_ids=frozenset({"ex"})),
        event(seq=5),
    ]
