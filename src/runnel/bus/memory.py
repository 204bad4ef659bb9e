"""The in-process event bus: the engine publishes, sockets subscribe.

``MemoryBus.publish`` is on the executor's hot path, so it does as little as it can: it
looks up the subscribers that want the event (an index by execution id and by workflow id,
so its cost is in the *matching* subscribers, not all of them), appends the event to each
one's bounded queue and, only if that consumer is idle, wakes it. It never awaits, never
blocks and never raises.

A consumer that does not keep up is not dropped and does not slow anyone down: once its
queue is full, further events for it are only *counted*. When it has read everything that
was queued, it receives one ``Lagged`` item with the number of events it missed and the
executions they belonged to, and live events resume after it. Everything before the
``Lagged`` item is gap-free, so the consumer knows exactly where to catch up from the store
(``SqlStore.events(execution_id, after_seq=<last seq it saw>)``).

Threading: ``publish`` and the consumers run on one event loop (the executor's). From any
other thread, hand events over with ``loop.call_soon_threadsafe(bus.publish, event)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeAlias

from runnel.model.events import Event

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "BusItem",
    "Lagged",
    "MemoryBus",
    "Subscription",
    "SubscriptionClosed",
]

log = logging.getLogger(__name__)

#: Events a subscriber may have waiting before it counts as lagging.
DEFAULT_MAX_QUEUE: Final = 1024


@dataclass(frozen=True, slots=True)
class Lagged:
    """The subscriber missed ``missed`` events (of ``execution_ids``) because it read too
    slowly; it should reload those executions' events from the store."""

    missed: int
    execution_ids: frozenset[str]


#: What a subscription yields.
BusItem: TypeAlias = Event | Lagged


class SubscriptionClosed(Exception):
    """``Subscription.get`` was called after the subscription ended."""


class Subscription:
    """One consumer's view of the bus: an async iterator of ``Event`` and ``Lagged``.

    Made by ``MemoryBus.subscribe``. Iterate it (``async for item in subscription``) or call
    ``get``; close it when done (``close()`` or ``async with``), which unsubscribes it.
    """

    __slots__ = (
        "_bus",
        "_ended",
        "_lagged_ids",
        "_max_queue",
        "_missed",
        "_queue",
        "_waiter",
        "delivered",
        "execution_id",
        "missed_total",
        "workflow_id",
    )

    def __init__(
        self,
        bus: MemoryBus | None,
        execution_id: str | None,
        workflow_id: str | None,
        max_queue: int,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        #: Events handed to this subscriber so far (queued, not necessarily read yet).
        self.delivered = 0
        #: Events this subscriber missed in all, over every ``Lagged`` it was sent.
        self.missed_total = 0
        self._bus = bus
        self._max_queue = max_queue
        self._queue: deque[Event] = deque()
        # Events missed since the queue was last full, and their executions; non-zero means
        # "lagging": new events are counted, not queued, until the consumer has caught up.
        self._missed = 0
        self._lagged_ids: set[str] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    # -- the publisher's side (called by MemoryBus.publish) ---------------------------

    def _offer(self, event: Event) -> None:
        if self._missed or len(self._queue) >= self._max_queue:
            # Keep the gap in one place: once lagging, queue nothing more until the
            # consumer has read what it has and received its Lagged item.
            self._missed += 1
            self._lagged_ids.add(event.execution_id)
            return
        self._queue.append(event)
        self.delivered += 1
        if self._waiter is not None:  # the consumer is idle: wake it (``_wake``)
            self._wake()

    def _end(self) -> None:
        """The bus closed: the consumer reads what is queued, then iteration stops."""
        self._ended = True
        self._bus = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # RuntimeError: the consumer's loop has closed; nobody is left to wake.
            with contextlib.suppress(RuntimeError):
                waiter.set_result(None)

    # -- the consumer's side ----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closed or the bus closed (queued items may still be read)."""
        return self._ended

    @property
    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._queue)

    def get_nowait(self) -> BusItem | None:
        """The next item if one is ready, else None."""
        if self._queue:
            return self._queue.popleft()
        if self._missed:
            lagged = Lagged(self._missed, frozenset(self._lagged_ids))
            self.missed_total += self._missed
            self._missed = 0
            self._lagged_ids = set()
            return lagged
        return None

    # A timeout parameter on purpose: "None when nothing came in time" is the convenience.
    async def get(self, timeout: float | None = None) -> BusItem | None:  # noqa: ASYNC109
        """The next item, waiting at most ``timeout`` seconds (None: no limit); None when
        the time ran out. Raises ``SubscriptionClosed`` once closed and fully read."""
        try:
            async with asyncio.timeout(timeout):
                return await self._next()
        except TimeoutError:
            return None
        except StopAsyncIteration:
            raise SubscriptionClosed("the subscription is closed") from None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusItem:
        queue = self._queue
        if queue:  # the common case while events flow: no waiting, no further call
            return queue.popleft()
        return await self._next()

    async def _next(self) -> BusItem:
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._ended:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Unsubscribe and drop what is queued; a waiting consumer stops. Idempotent."""
        bus = self._bus
        if bus is not None:
            bus._remove(self)
        self._queue.clear()
        self._missed = 0
        self._lagged_ids = set()
        self._end()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class MemoryBus:
    """Fan-out of events to subscribers in this process; implements the engine's
    ``EventSink`` and ``runnel.bus.Bus``."""

    def __init__(self) -> None:
        # Dicts used as insertion-ordered sets. A subscriber sits in exactly one index:
        # by execution id if it has one (its workflow filter is then checked per event),
        # else by workflow id, else among those that want everything.
        self._all: dict[Subscription, None] = {}
        self._by_execution: dict[str, dict[Subscription, None]] = {}
        self._by_workflow: dict[str, dict[Subscription, None]] = {}
        self._count = 0
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions (e.g. for an "open sockets" gauge)."""
        return self._count

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber that wants it. Never blocks, never raises."""
        try:
            for subscription in self._all:
                subscription._offer(event)
            if self._by_workflow:
                matching = self._by_workflow.get(event.workflow_id)
                if matching:
                    for subscription in matching:
                        subscription._offer(event)
            if self._by_execution:
                matching = self._by_execution.get(event.execution_id)
                if matching:
                    for subscription in matching:
                        wanted = subscription.workflow_id
                        if wanted is None or wanted == event.workflow_id:
                            subscription._offer(event)
        except Exception:
            # The engine must go on whatever happens to the live view; the store has it all.
            log.exception("event bus: publishing %s failed", event.type)

    def subscribe(
        self,
        *,
        execution_id: str | None = None,
        workflow_id: str | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Subscription:
        """Events published from now on, of one execution and/or one workflow (both None:
        every event). At most ``max_queue`` wait unread before the subscriber lags."""
        if self._closed:
            subscription = Subscription(None, execution_id, workflow_id, max_queue)
            subscription._end()
            return subscription
        subscription = Subscription(self, execution_id, workflow_id, max_queue)
        if execution_id is not None:
            self._by_execution.setdefault(execution_id, {})[subscription] = None
        elif workflow_id is not None:
            self._by_workflow.setdefault(workflow_id, {})[subscription] = None
        else:
            self._all[subscription] = None
        self._count += 1
        return subscription

    async def close(self) -> None:
        """End every subscription (each still reads what it has queued); later
        subscriptions end at once and later events go nowhere. Idempotent."""
        self._closed = True
        subscriptions = [
            *self._all,
            *(s for group in self._by_workflow.values() for s in group),
            *(s for group in self._by_execution.values() for s in group),
        ]
        self._all.clear()
        self._by_workflow.clear()
        self._by_execution.clear()
        self._count = 0
        for subscription in subscriptions:
            subscription._end()

    def _remove(self, subscription: Subscription) -> None:
        if subscription.execution_id is not None:
            removed = _discard(self._by_execution, subscription.execution_id, subscription)
        elif subscription.workflow_id is not None:
            removed = _discard(self._by_workflow, subscription.workflow_id, subscription)
        else:
            removed = self._all.pop(subscription, False) is None
        if removed:
            self._count -= 1


def _discard(
    index: dict[str, dict[Subscription, None]], key: str, subscription: Subscription
) -> bool:
    group = index.get(key)
    if group is None or subscription not in group:
        return False
    del group[subscription]
    if not group:
        # Per-execution groups come and go with executions; do not keep empty ones.
        del index[key]
    return True
