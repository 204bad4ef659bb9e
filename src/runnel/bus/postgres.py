"""A bus for many processes on one PostgreSQL database, over LISTEN/NOTIFY.

Every process keeps a local ``MemoryBus`` for its subscribers. ``publish`` hands an event to
it and sends it to the other processes on the ``runnel_events`` channel; each process's
listener feeds what arrives from the others into its own ``MemoryBus``. So a socket of API
process A sees, live and in order, the events of an execution worker B runs: one process
sends its notifications in order over one connection, and PostgreSQL delivers them in that
order.

A notification carries at most 8000 bytes. Events that fit are packed, consecutive ones
together, into as few notifications as their sizes allow (one line each: the encoder's JSON
never holds a raw newline); a larger one is split into parts (delivered consecutively,
reassembled by the receiver); one larger than ``inline_limit`` goes as a reference
(execution id, seq) that receivers read from the store through ``load_event`` (the bus does
not import the store; the composition root passes it). Packing matters under load: a worker
publishes about a dozen events per execution, and every notification costs the server, and
each listening process, a queue entry and a wake-up of its own.

The same connections carry the two other cross-process messages of the multi-node mode:
``runnel_work`` (something was queued: idle workers claim at once instead of polling) and
``runnel_control`` (cancel, pause or resume for whichever worker runs an execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import psycopg

from runnel.bus.memory import DEFAULT_MAX_QUEUE, MemoryBus, Subscription
from runnel.model.events import Event

__all__ = [
    "CONTROL_CHANNEL",
    "EVENTS_CHANNEL",
    "WORK_CHANNEL",
    "PostgresBus",
    "split_utf8",
]

log = logging.getLogger(__name__)

EVENTS_CHANNEL: Final = "runnel_events"
WORK_CHANNEL: Final = "runnel_work"
CONTROL_CHANNEL: Final = "runnel_control"

#: PostgreSQL refuses payloads of 8000 bytes or more; the header takes the rest.
_PART_BYTES: Final = 7800
#: Notifications sent per statement (one round trip).
_BATCH: Final = 500
#: Events packed into one notification join with this (never inside a JSON text).
_LINE: Final = "\n"
#: How long a receiver looks for a referenced event not yet committed by its sender.
_LOAD_WAIT_SECONDS: Final = 5.0

# One round trip sends a whole batch; a function scan yields the rows in array order, so
# the notifications are queued (and delivered) in the order they were published. Each
# payload is unique (it carries a message number), so none is folded into another. The
# arrays go in binary: the text form escapes every quote of every JSON payload, in Python.
_NOTIFY_MANY: Final = "SELECT pg_notify(c, p) FROM unnest(%b::text[], %b::text[]) AS t(c, p)"

EncodeEvent = Callable[[Event], str]
DecodeEvent = Callable[[str], Event]
LoadEvent = Callable[[str, int], Awaitable[Event | None]]


class PostgresBus:
    """Implements ``runnel.bus.Bus`` across processes. ``start`` before use, from the
    event loop that publishes; ``close`` at the end.

    ``listen_events=False`` (a worker-only process, which has no sockets) still sends
    events but does not receive other processes' events.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        encode: EncodeEvent,
        decode: DecodeEvent,
        load_event: LoadEvent | None = None,
        listen_events: bool = True,
        inline_limit: int = 64 * 1024,
    ) -> None:
        self._conninfo = conninfo
        self._encode = encode
        self._decode = decode
        self._load_event = load_event
        self._listen_events = listen_events
        self._inline_limit = inline_limit
        self._local = MemoryBus()
        #: Tells this process's notifications apart from the others' (never delivered twice).
        self.origin = uuid.uuid4().hex[:12]
        self._message_no = 0
        #: (channel, payload, "", 0) to send; an event that may be packed with its neighbours
        #: is (EVENTS_CHANNEL, None, its encoded body, its size in bytes) until ``_pack``.
        self._outbox: list[tuple[str, str | None, str, int]] = []
        self._outbox_ready = asyncio.Event()
        self._parts: dict[tuple[str, str], list[str]] = {}
        self._listening = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._observers: list[Callable[[Event], None]] = []
        #: Called (on the event loop) when another process queued work.
        self.on_work: Callable[[], None] | None = None
        #: Called with (execution id, signal name) when a process sends a control signal.
        self.on_control: Callable[[str, str], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Connect and listen; returns once notifications sent from now on are received."""
        self._sender = asyncio.create_task(self._send_loop(), name="runnel-bus-sender")
        self._listener = asyncio.create_task(self._listen_loop(), name="runnel-bus-listener")
        async with asyncio.timeout(timeout):
            await self._listening.wait()

    async def close(self) -> None:
        """Send what is queued, stop listening, end every subscription. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._outbox_ready.set()
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._sender), timeout=5.0)
            self._sender.cancel()
            with contextlib.suppress(BaseException):
                await self._sender
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
        await self._local.close()

    # -- the Bus protocol ----------------------------------------------------------------

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions in this process."""
        return self._local.subscriber_count

    def publish(self, event: Event) -> None:
        """Deliver ``event`` here and to every other process. Never blocks, never raises."""
        self._deliver(event)
        if self._closed:
            return
        try:
            self._send_event(event)
        except Exception:
            # The engine must go on whatever happens to the live view; the store has it all.
            log.exception("event bus: sending %s failed", event.type)

    def subscribe(
        self,
        *,
        execution_id: str | None = None,
        workflow_id: str | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Subscription:
        """Events of every process from now on, matching the filters (None: any)."""
        return self._local.subscribe(
            execution_id=execution_id, workflow_id=workflow_id, max_queue=max_queue
        )

    def observe(self, observer: Callable[[Event], None]) -> None:
        """Call ``observer`` synchronously with every event delivered here (this process's
        and the others'), before subscribers see it."""
        self._observers.append(observer)

    # -- work and control ------------------------------------------------------------------

    def notify_work(self) -> None:
        """Tell idle workers everywhere that something was queued."""
        self._queue(WORK_CHANNEL, f"{self._next_message()}|")

    def send_control(self, execution_id: str, signal: str) -> None:
        """Send ``signal`` (cancel, pause, resume) to the process running ``execution_id``."""
        self._queue(CONTROL_CHANNEL, f"{self._next_message()}|{signal}|{execution_id}")

    # -- sending -----------------------------------------------------------------------------

    def _next_message(self) -> str:
        self._message_no += 1
        return f"{self.origin}|{self._message_no}"

    def _queue(self, channel: str, payload: str) -> None:
        if self._closed:
            return
        self._outbox.append((channel, payload, "", 0))
        self._outbox_ready.set()

    def _send_event(self, event: Event) -> None:
        body = self._encode(event)
        size = len(body) if body.isascii() else len(body.encode())
        if size <= _PART_BYTES and _LINE not in body:
            # Packed with its neighbours when sent (``_pack``).
            self._outbox.append((EVENTS_CHANNEL, None, body, size))
            self._outbox_ready.set()
            return
        head = self._next_message()
        if size > self._inline_limit:
            self._queue(EVENTS_CHANNEL, f"{head}|ref|{event.seq}|{event.execution_id}")
            return
        parts = split_utf8(body, _PART_BYTES) if size > _PART_BYTES else [body]
        for index, part in enumerate(parts, 1):
            self._queue(EVENTS_CHANNEL, f"{head}|{index}/{len(parts)}|{part}")

    def _pack(self, limit: int) -> list[tuple[str, str]]:
        """Take up to ``limit`` notifications off the outbox, packing runs of whole events
        into as few as fit in ``_PART_BYTES`` each. Order is kept."""
        outbox = self._outbox
        batch: list[tuple[str, str]] = []
        taken = 0
        while taken < len(outbox) and len(batch) < limit:
            channel, payload, body, size = outbox[taken]
            taken += 1
            if payload is not None:
                batch.append((channel, payload))
                continue
            lines = [body]
            while taken < len(outbox):
                _, next_payload, next_body, next_size = outbox[taken]
                if next_payload is not None:
                    break
                grown = size + 1 + next_size
                if grown > _PART_BYTES:
                    break
                lines.append(next_body)
                size = grown
                taken += 1
            kind = "1/1" if len(lines) == 1 else f"pack/{len(lines)}"
            batch.append((EVENTS_CHANNEL, f"{self._next_message()}|{kind}|{_LINE.join(lines)}"))
        del outbox[:taken]
        return batch

    async def _send_loop(self) -> None:
        connection: psycopg.AsyncConnection[object] | None = None
        try:
            while True:
                await self._outbox_ready.wait()
                self._outbox_ready.clear()
                batch: list[tuple[str, str]] = []
                while batch or self._outbox:
                    if not batch:
                        batch = self._pack(_BATCH)
                    try:
                        if connection is None or connection.closed:
                            connection = await psycopg.AsyncConnection.connect(
                                self._conninfo, autocommit=True
                            )
                        await connection.execute(
                            _NOTIFY_MANY, ([c for c, _ in batch], [p for _, p in batch])
                        )
                    except Exception:
                        log.exception("event bus: sending notifications failed; retrying")
                        if connection is not None:
                            await connection.close()
                            connection = None
                        if self._closed:
                            return
                        await asyncio.sleep(0.5)
                        continue
                    batch = []
                if self._closed:
                    return
        finally:
            if connection is not None:
                await connection.close()

    # -- receiving ---------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        channels = [WORK_CHANNEL, CONTROL_CHANNEL]
        if self._listen_events:
            channels.append(EVENTS_CHANNEL)
        delay = 0.1
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    for channel in channels:
                        await connection.execute(f"LISTEN {channel}")
                    reconnected = self._listening.is_set()
                    self._listening.set()
                    delay = 0.1
                    if reconnected and self.on_work is not None:
                        # Work queued while we were away would otherwise wait for the poll.
                        self.on_work()
                    async for note in connection.notifies():
                        await self._receive(note.channel, note.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event bus: listening failed; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _receive(self, channel: str, payload: str) -> None:
        try:
            origin, number, rest = _split(payload, 2)
            if channel == WORK_CHANNEL:
                if self.on_work is not None:
                    self.on_work()
            elif channel == CONTROL_CHANNEL:
                signal, execution_id = _split(rest, 1)
                if self.on_control is not None:
                    self.on_control(execution_id, signal)
            elif channel == EVENTS_CHANNEL and origin != self.origin:
                if rest.startswith("pack/"):
                    self._unpack(rest)
                    return
                event = await self._event_from(origin, number, rest)
                if event is not None:
                    self._deliver(event)
        except Exception:
            log.exception("event bus: a notification on %s could not be read", channel)

    def _unpack(self, rest: str) -> None:
        """Deliver the events of a packed notification, in order; a bad one alone is lost."""
        _, body = _split(rest, 1)
        for line in body.split(_LINE):
            try:
                event = self._decode(line)
            except Exception:
                log.exception("event bus: a packed event could not be read")
                continue
            self._deliver(event)

    async def _event_from(self, origin: str, number: str, rest: str) -> Event | None:
        kind, body = _split(rest, 1)
        if kind == "ref":
            seq, execution_id = _split(body, 1)
            return await self._load(execution_id, int(seq))
        index, _, count = kind.partition("/")
        if count == "1":
            return self._decode(body)
        key = (origin, number)
        parts = self._parts.setdefault(key, [])
        parts.append(body)
        if int(index) < int(count):
            return None
        del self._parts[key]
        if len(parts) != int(count):
            # A part went missing (the listener reconnected in between): drop the event.
            log.warning("event bus: an event of %s arrived incomplete", origin)
            return None
        return self._decode("".join(parts))

    async def _load(self, execution_id: str, seq: int) -> Event | None:
        """A large event, from the store. Events are published live before the checkpoint
        that stores them commits, so it may take a moment to appear."""
        if self._load_event is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LOAD_WAIT_SECONDS
        delay = 0.005
        while True:
            event = await self._load_event(execution_id, seq)
            if event is not None or loop.time() >= deadline:
                if event is None:
                    log.warning("event bus: event %s#%d not found in the store", execution_id, seq)
                return event
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _deliver(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("event bus: an observer failed")
        self._local.publish(event)


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """``text`` in pieces of at most ``max_bytes`` UTF-8 bytes, never cutting a character."""
    data = text.encode()
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        # Back up to the start of a character: continuation bytes are 0b10xxxxxx.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


def _split(text: str, count: int) -> list[str]:
    pieces = text.split("|", count)
    if len(pieces) != count + 1:
        raise ValueError(f"malformed notification {text[:80]!r}")
    return pieces
