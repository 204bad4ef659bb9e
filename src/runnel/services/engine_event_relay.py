"""Engine events across processes: several API processes on one PostgreSQL database.

A share revoked, a token reset, an engine deleted or renamed, or the kill-switch list
changed on process A must reach the engine connections and GUI sessions that process B
holds (and an engine's connection ending on B must stop A showing it online).
``PostgresEngineEventRelay`` sends every event this process's ``EngineEventHub``
announces as a NOTIFY on its own channel (``CHANNEL``, apart from the event bus's
channels) and LISTENs on it: another process's event goes to this process's hub
(``EngineEventHub.receive``), so its listeners (the access cache, the realtime gateway)
act on it as on a local one. Each process skips its own notifications (``origin``).

The services announce a change after it is committed, so a process that reads the store
when it hears of it reads the change. While the listening connection is down (it
reconnects with backoff), events are missed: the access cache forgets everything on each
reconnect, answers expire after ``ACCESS_TTL_SECONDS`` anyway, a replaced token ends its
connection at the engine's next vitals report (10 s) and the kill switch is re-read every
``KILL_SWITCH_REFRESH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import psycopg

from runnel.services.engine_events import (
    AuthListChanged,
    EngineDeleted,
    EngineDisconnected,
    EngineEvent,
    EngineEventHub,
    EngineRenamed,
    EngineTokenReset,
    KillSwitchChanged,
)

__all__ = ["CHANNEL", "PostgresEngineEventRelay", "decode_event", "encode_event"]

log = logging.getLogger(__name__)

CHANNEL: Final = "runnel_engine_events"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES: Final = 7900

#: The kill-switch list now (read from the store when it did not fit a notification).
ComponentIds = Callable[[], Awaitable[Sequence[str]]]


def encode_event(event: EngineEvent, origin: str) -> str:
    """``event`` as a notification payload (a kill-switch list too long for one is left
    out: ``"c": null``, and receivers read it from the store)."""
    body: dict[str, Any] = {"o": origin}
    if isinstance(event, AuthListChanged):
        body |= {"k": "auth", "e": event.engine_id}
    elif isinstance(event, EngineTokenReset):
        body |= {"k": "token", "e": event.engine_id}
    elif isinstance(event, EngineDeleted):
        body |= {"k": "deleted", "e": event.engine_id}
    elif isinstance(event, EngineRenamed):
        body |= {"k": "renamed", "e": event.engine_id, "n": event.name}
    elif isinstance(event, EngineDisconnected):
        body |= {"k": "gone", "e": event.engine_id, "t": event.at}
    else:
        body |= {"k": "kill", "c": list(event.component_ids)}
    text = json.dumps(body, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        text = json.dumps({**body, "c": None}, separators=(",", ":"))
    return text


def decode_event(text: str) -> tuple[str, EngineEvent | None, bool]:
    """``(origin, event, complete)`` of a payload; ``complete`` is False for a kill-switch
    event whose list was left out (``event`` holds an empty list then). Raises
    ``ValueError`` for a payload that is not one."""
    body = json.loads(text)
    if not isinstance(body, dict) or not isinstance(body.get("o"), str):
        raise ValueError("not an engine event")
    origin, kind = body["o"], body.get("k")
    if kind == "kill":
        ids = body.get("c")
        if ids is None:
            return origin, KillSwitchChanged(()), False
        if not isinstance(ids, list):
            raise ValueError("a kill-switch event without its list")
        return origin, KillSwitchChanged(tuple(str(i) for i in ids)), True
    if kind not in ("auth", "token", "deleted", "renamed", "gone"):
        return origin, None, True  # a kind of a newer release: nothing to do here
    engine_id = body.get("e")
    if not isinstance(engine_id, str):
        raise ValueError("an engine event without its engine id")
    if kind == "auth":
        return origin, AuthListChanged(engine_id), True
    if kind == "token":
        return origin, EngineTokenReset(engine_id), True
    if kind == "deleted":
        return origin, EngineDeleted(engine_id), True
    if kind == "gone":
        at = body.get("t")
        if not isinstance(at, int | float):
            raise ValueError("a disconnect without its time")
        return origin, EngineDisconnected(engine_id, float(at)), True
    return origin, EngineRenamed(engine_id, str(body.get("n", ""))), True


class PostgresEngineEventRelay:
    """Joins one process's ``EngineEventHub`` to the other processes' (module docstring).
    ``start`` once, ``close`` at the end."""

    def __init__(
        self,
        conninfo: str,
        hub: EngineEventHub,
        *,
        component_ids: ComponentIds | None = None,
        on_remote: Callable[[EngineEvent], Awaitable[None]] | None = None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._hub = hub
        self._component_ids = component_ids
        #: Called with each event of another process before the hub hears it.
        self._on_remote = on_remote
        #: Called when the listening connection came back (events may have been missed).
        self._on_reconnect = on_reconnect
        self.origin = uuid.uuid4().hex[:12]
        self._sender: psycopg.AsyncConnection[Any] | None = None
        self._send_lock = asyncio.Lock()
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Listen, and relay this process's events; returns once listening (or, when the
        database does not answer in ``timeout`` s, with the listener still trying)."""
        self._listener = asyncio.create_task(self._listen_loop(), name="engine-event-relay")
        self._hub.relay_to(self.publish)
        try:
            async with asyncio.timeout(timeout):
                await self._listening.wait()
        except TimeoutError:
            log.warning("engine events: not listening to the other processes yet")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub.relay_to(None)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        async with self._send_lock:
            sender, self._sender = self._sender, None
            if sender is not None:
                with contextlib.suppress(Exception):
                    await sender.close()

    async def publish(self, event: EngineEvent) -> None:
        """NOTIFY the other processes of ``event`` (one retry on a new connection)."""
        if self._closed:
            return
        payload = encode_event(event, self.origin)
        async with self._send_lock:
            for attempt in (1, 2):
                try:
                    if self._sender is None or self._sender.closed:
                        self._sender = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True
                        )
                    await self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    return
                except psycopg.Error:
                    if self._sender is not None:
                        with contextlib.suppress(Exception):
                            await self._sender.close()
                    self._sender = None
                    if attempt == 2:
                        raise

    async def _listen_loop(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    if self._listening.is_set() and self._on_reconnect is not None:
                        self._on_reconnect()
                    self._listening.set()
                    delay = 0.1
                    async for note in connection.notifies():
                        await self._receive(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine events: listening failed; reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _receive(self, payload: str) -> None:
        try:
            origin, event, complete = decode_event(payload)
            if origin == self.origin or event is None:
                return
            if not complete and self._component_ids is not None:
                event = KillSwitchChanged(tuple(await self._component_ids()))
            if self._on_remote is not None:
                await self._on_remote(event)
            await self._hub.receive(event)
        except Exception:
            log.exception("engine events: a notification could not be handled")
