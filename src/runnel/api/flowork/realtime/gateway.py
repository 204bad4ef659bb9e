"""The gateway's Socket.IO server: ``/gui-socket`` for the GUI, ``/engine-socket`` for
engines, and the relay between them (docs/flowork-realtime.md).

A request is checked with ``EngineAccess`` (the store) each time. A delivery asks the
platform's ``EngineAccessCache``: answers per (user, engine) remembered for at most a
second and forgotten the moment an engine event says who may use the engine changed (a
share, a revoke, a token reset, a deletion), so a revoked share stops deliveries at once.
Handlers run one at a time per connection (``async_handlers=False``), and the embedded
engine's events are delivered in batches by one task, so an engine's events reach the GUI
in the order it sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Final, Protocol

import engineio.packet
import orjson
import socketio
import socketio.packet
from socketio.exceptions import ConnectionRefusedError as Refused

from runnel.api.common.state import ApiState
from runnel.api.flowork.realtime.sessions import EngineLink, EngineLinks, GuiSession, GuiSessions
from runnel.api.flowork.realtime.wire import (
    ENGINE_NAMESPACE,
    GUI_NAMESPACE,
    WireError,
    engine_credentials,
    gui_credentials,
    internal_api_url,
    job_request,
    relay_request,
    status_message,
    vitals_message,
)
from runnel.auth.signatures import MessageFormat
from runnel.platform import Platform
from runnel.services.core_engine.types import EngineUser, Outgoing
from runnel.services.engine_events import (
    AuthListChanged,
    EngineDeleted,
    EngineDisconnected,
    EngineEvent,
    EngineRenamed,
    EngineTokenReset,
    KillSwitchChanged,
)
from runnel.services.errors import ServiceError, Unauthorized

__all__ = ["OUTBOX_SIZE", "EmbeddedCore", "RealtimeGateway"]

log = logging.getLogger(__name__)

#: Embedded-engine events waiting for delivery; beyond this they are dropped (logged)
#: rather than letting a stuck delivery grow memory without bound.
OUTBOX_SIZE: Final = 10_000
#: Most embedded-engine events delivered as one batch.
MAX_BATCH: Final = 256
#: What the gateway calls an engine that a user may no longer see (share revoked, engine
#: deleted), in ``engine_status_update``.
REVOKED: Final = "revoked"


class _FastJson:
    """The ``json`` of ``_FastPacket``: orjson to encode (several times faster than the
    standard library's, same JSON), the standard library to decode (it takes what every
    client sends, big integers included)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, **kwargs)


class _FastPacket(socketio.packet.Packet):  # type: ignore[misc]
    """Socket.IO's packet with ``_FastJson``; a serializer of this server only (setting
    ``json=`` on the server would change every Socket.IO client of the process too)."""

    json = _FastJson


class _InlineManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's manager, but an emit without a callback hands its packet to each
    recipient's Engine.IO queue in turn instead of a task per recipient (and a wait for
    them all): the queues are unbounded, so nothing blocks, and one emit costs no trip
    through the event loop. Order per recipient is the order of the emits, as before."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.rooms:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(
            socketio.packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        packets = [
            engineio.packet.Packet(engineio.packet.MESSAGE, part)
            for part in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            if sid in skipped:
                continue
            for packet in packets:
                try:
                    await self.server.eio.send_packet(eio_sid, packet)
                except Exception:  # that client is closing: the others still get it
                    log.debug("socket.io: sending to %s failed", sid, exc_info=True)
                    break


class EmbeddedCore(Protocol):
    """What the gateway uses of the embedded engine's ``CoreEngine``."""

    @property
    def engine_id(self) -> str: ...

    async def handle(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]: ...

    def listen(self, listener: Callable[[Outgoing], None]) -> Callable[[], None]: ...


class RealtimeGateway:
    """One per app: the Socket.IO server (``server``) and who is connected to it."""

    def __init__(self, state: ApiState) -> None:
        self._state = state
        # python-socketio has no types: the server is Any, wrapped by this class.
        self.server: Any = socketio.AsyncServer(
            client_manager=_InlineManager(),
            serializer=_FastPacket,
            async_mode="asgi",
            cors_allowed_origins="*",
            cors_credentials=False,
            async_handlers=False,
            max_http_buffer_size=state.settings.max_body_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.sessions = GuiSessions()
        self.links = EngineLinks()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stops: list[Callable[[], None]] = []
        self._core: EmbeddedCore | None = None
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue(OUTBOX_SIZE)
        self._pump: asyncio.Task[None] | None = None
        on = self.server.on
        on("connect", self._gui_connect, namespace=GUI_NAMESPACE)
        on("disconnect", self._gui_disconnect, namespace=GUI_NAMESPACE)
        on("*", self._gui_event, namespace=GUI_NAMESPACE)
        on("connect", self._engine_connect, namespace=ENGINE_NAMESPACE)
        on("disconnect", self._engine_disconnect, namespace=ENGINE_NAMESPACE)
        on("*", self._engine_event, namespace=ENGINE_NAMESPACE)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the engine events and to the embedded engine (``flowork.start``
        started it, when there is one)."""
        platform = self._state.ready_platform
        self._stops.append(platform.flowork.events.listen(self._on_engine_event))
        # GET /api/v1/user/engines shows the live status of the engines linked here.
        engines = platform.flowork.engines
        self.links.exclusive = not platform.multi_node
        self.links.clock = engines.now
        engines.links = self.links

        def unlink() -> None:
            if engines.links is self.links:
                engines.links = None

        self._stops.append(unlink)
        self._pump = asyncio.create_task(self._pump_outbox(), name="gateway-embedded-events")
        self._attach_core()

    async def stop(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()
        self._core = None
        for sid in self.links.all_sids():
            with contextlib.suppress(Exception):
                await self.server.disconnect(sid, namespace=ENGINE_NAMESPACE)
        await self.server.shutdown()
        tasks = [t for t in (self._pump, *self._tasks) if t is not None]
        self._pump = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- /gui-socket ----------------------------------------------------------------------

    async def _gui_connect(self, sid: str, environ: Mapping[str, Any], auth: object = None) -> bool:
        platform = self._state.platform
        if platform is None:
            raise Refused("The server is starting or stopping")
        try:
            signed = gui_credentials(auth, environ)
            user = await platform.flowork.identities.sign_in(signed, MessageFormat.SOCKET)
        except WireError as error:
            raise Refused(str(error)) from None
        except ServiceError as error:
            raise Refused(error.message) from None
        except Exception:
            log.exception("gui-socket: sign-in failed")
            raise Refused("Authentication failed: internal error") from None
        # Registered before the statuses are read, so that a change meanwhile is either in
        # them or pushed to this session too.
        self.sessions.add(GuiSession(sid, user.id, user.address))
        try:
            statuses = await self._statuses_for(platform, user.id)
        except Exception:
            self.sessions.remove(sid)
            log.exception("gui-socket: reading the engines of %s failed", user.id)
            raise Refused("Could not read your engines: internal error") from None
        for status in statuses:
            self.sessions.mark(user.id, status["engineId"], known=True)
        # Last, with no await after it: the task runs once this handler returned and the
        # CONNECT packet is queued, so the statuses reach a connected client.
        self._spawn(self._send_each(sid, [("engine_status_update", s) for s in statuses]))
        return True

    async def _gui_disconnect(self, sid: str, reason: object = None) -> None:
        self.sessions.remove(sid)

    async def _gui_event(self, event: str, sid: str, *args: Any) -> None:
        """A job request: check, add ``user_context``, relay to the target engine."""
        session = self.sessions.get(sid)
        platform = self._state.platform
        if session is None or platform is None:
            return
        try:
            payload = job_request(event, args[0] if args else None)
            engine_id = payload["target_engine_id"]
            await platform.flowork.access.require_use(session.user_id, engine_id)
            payload["user_context"] = {"user_id": session.user_id, "address": session.address}
            if engine_id == self._embedded_id(platform):
                await self._relay_embedded(session, payload)
            else:
                await self._relay_remote(engine_id, payload)
        except WireError as error:
            await self._gui_error(sid, str(error))
        except ServiceError as error:
            await self._gui_error(sid, error.message)

    async def _relay_remote(self, engine_id: str, payload: dict[str, Any]) -> None:
        link = self.links.by_engine(engine_id)
        if link is None:
            raise WireError(f"Engine {engine_id} is offline")
        await self.server.emit(
            payload["type"], {"v": 2, "payload": payload}, to=link.sid, namespace=ENGINE_NAMESPACE
        )

    async def _relay_embedded(self, session: GuiSession, payload: dict[str, Any]) -> None:
        core = self._attach_core()
        if core is None:
            raise WireError("The embedded engine is not running on this server")
        user = EngineUser(session.address, session.user_id)
        for answer in await core.handle(user, payload):
            await self._emit_user(session.user_id, answer)

    async def _gui_error(self, sid: str, text: str) -> None:
        await self.server.emit(
            "error", {"type": "error", "error": text}, to=sid, namespace=GUI_NAMESPACE
        )

    # -- /engine-socket ---------------------------------------------------------------

    async def _engine_connect(
        self, sid: str, environ: Mapping[str, Any], auth: object = None
    ) -> bool:
        """Accepted either way, so that a refused engine hears ``auth_failed``."""
        platform = self._state.platform
        try:
            if platform is None:
                raise Unauthorized("The server is starting or stopping")
            engine_id, token = engine_credentials(auth)
            engine = await platform.flowork.engines.authenticate(token)
            if engine.id != engine_id or engine.embedded:
                raise Unauthorized("Invalid engine token for this engine_id")
        except (WireError, ServiceError) as error:
            text = error.message if isinstance(error, ServiceError) else str(error)
            self._spawn(self._refuse_engine(sid, text))
            return True
        except Exception:
            log.exception("engine-socket: authentication failed")
            self._spawn(self._refuse_engine(sid, "Authentication failed: internal error"))
            return True
        link = EngineLink(sid, engine.id, engine.owner_id, engine.name, token)
        replaced = self.links.add(link)
        # As in _gui_connect: spawned last, so its events follow the CONNECT packet.
        self._spawn(self._welcome_engine(platform, link, replaced))
        return True

    async def _refuse_engine(self, sid: str, text: str) -> None:
        await self.server.emit("auth_failed", {"error": text}, to=sid, namespace=ENGINE_NAMESPACE)
        await self.server.disconnect(sid, namespace=ENGINE_NAMESPACE)

    async def _welcome_engine(
        self, platform: Platform, link: EngineLink, replaced: EngineLink | None
    ) -> None:
        await self.server.emit(
            "auth_success", {"user_id": link.owner_id}, to=link.sid, namespace=ENGINE_NAMESPACE
        )
        if replaced is not None:
            # One live connection per engine: the newest wins (an engine that restarted
            # reconnects before the gateway noticed that its old connection died).
            await self.server.disconnect(replaced.sid, namespace=ENGINE_NAMESPACE)
        with contextlib.suppress(ServiceError):
            await platform.flowork.engines.record_seen(link.engine_id)
        await self._push_status(link.engine_id, "online", link.name)

    async def _still_valid(self, platform: Platform, link: EngineLink) -> bool:
        try:
            engine = await platform.flowork.engines.authenticate(link.token)
        except ServiceError:
            return False
        return engine.id == link.engine_id

    async def _engine_disconnect(self, sid: str, reason: object = None) -> None:
        link, was_live = self.links.remove(sid)
        if link is not None and was_live:
            await self._push_status(link.engine_id, "offline", link.name)
            state = self.links.link_state(link.engine_id)
            platform = self._state.platform
            if platform is not None and state is not None and state.ended_at is not None:
                # Other API processes (PostgreSQL) stop showing it online too.
                ended = EngineDisconnected(link.engine_id, state.ended_at)
                await platform.flowork.events.notify(ended)

    async def _engine_event(self, event: str, sid: str, *args: Any) -> None:
        link = self.links.by_sid(sid)
        platform = self._state.platform
        if link is None or platform is None:
            return  # not authenticated (it is being disconnected) or shutting down
        data = args[0] if args else None
        try:
            if event == "engine_ready":
                await platform.flowork.engines.record_seen(link.engine_id, internal_api_url(data))
            elif event == "engine_vitals_update":
                if not await self._still_valid(platform, link):
                    await self.server.disconnect(sid, namespace=ENGINE_NAMESPACE)
                    return
                await platform.flowork.engines.record_seen(link.engine_id)
                await self._deliver(
                    link.engine_id,
                    "engine_vitals_update",
                    vitals_message(link.engine_id, data),
                    None,
                )
            elif event == "relay_to_gui":
                audience, message = relay_request(data)
                await self._deliver(link.engine_id, message["type"], message, audience)
            else:
                log.debug("engine %s sent unknown event %r", link.engine_id, event)
        except WireError as error:
            log.warning("engine %s: %s", link.engine_id, error)
        except ServiceError as error:  # the engine was deleted meanwhile
            log.info("engine %s: %s", link.engine_id, error.message)

    # -- the embedded engine ----------------------------------------------------------

    def _attach_core(self) -> EmbeddedCore | None:
        """The embedded engine's ``CoreEngine`` (listened to from the first sight)."""
        platform = self._state.platform
        core: EmbeddedCore | None = platform.core_engine if platform is not None else None
        if core is not None and core is not self._core:
            self._core = core
            self._stops.append(core.listen(self._on_outgoing))
        return self._core

    def _embedded_id(self, platform: Platform) -> str | None:
        embedded = platform.flowork.embedded_engine
        return embedded.id if embedded is not None else None

    def _on_outgoing(self, outgoing: Outgoing) -> None:
        try:
            self._outbox.put_nowait(outgoing)
        except asyncio.QueueFull:
            log.warning("embedded engine: event %r dropped (outbox full)", outgoing.message)

    async def _pump_outbox(self) -> None:
        """Deliver the embedded engine's events in order: whatever queued up meanwhile
        goes as one batch (one permission check per user and engine)."""
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._outbox.get_nowait())
                except asyncio.QueueEmpty:
                    break
            core = self._core
            if core is None:
                continue
            items: list[tuple[str, Mapping[str, Any], frozenset[str] | None]] = []
            for outgoing in batch:
                message = outgoing.message
                event = str(message.get("type", ""))
                if event == "engine_status_update":
                    # The Core Engine's status tick carries vitals; on the gateway socket
                    # engine_status_update means online/offline, as for remote engines.
                    event = "engine_vitals_update"
                    message = {**message, "type": event}
                items.append((event, message, outgoing.audience))
            try:
                await self._deliver_many(core.engine_id, items)
            except Exception:
                log.exception("embedded engine: delivering %d events failed", len(items))

    # -- engine events (shares, tokens, the kill switch) -------------------------------

    async def _on_engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, AuthListChanged):
            await self._emit_engine(event.engine_id, "force_refresh_auth_list", {})
            await self._resync_access(event.engine_id)
        elif isinstance(event, KillSwitchChanged):
            components = {"components": list(event.component_ids)}
            for link in self.links.live():
                await self.server.emit(
                    "force_sync_kill_switch", components, to=link.sid, namespace=ENGINE_NAMESPACE
                )
        elif isinstance(event, EngineTokenReset):
            await self._drop_engine(event.engine_id)
        elif isinstance(event, EngineDeleted):
            name = await self._drop_engine(event.engine_id)
            # Its record is gone, so nobody "may use" it: tell whoever was told about it.
            for user_id in self.sessions.announced_to(event.engine_id):
                self.sessions.mark(user_id, event.engine_id, known=False)
                await self._tell(user_id, status_message(event.engine_id, REVOKED, name))
        elif isinstance(event, EngineDisconnected):
            self.links.mark_ended(event.engine_id, event.at)
        elif isinstance(event, EngineRenamed):
            renamed = self.links.by_engine(event.engine_id)
            if renamed is not None:
                renamed.name = event.name
            online = renamed is not None or self._is_embedded(event.engine_id)
            await self._push_status(event.engine_id, "online" if online else "offline", event.name)

    async def _drop_engine(self, engine_id: str) -> str:
        """End the engine's connection at once (its disconnect handler pushes "offline");
        returns the name it had ("" when it was not connected)."""
        link = self.links.by_engine(engine_id)
        if link is None:
            return ""
        await self.server.disconnect(link.sid, namespace=ENGINE_NAMESPACE)
        return link.name

    async def _resync_access(self, engine_id: str) -> None:
        """After a share or a revoke: tell newly allowed users the engine's status and
        users who lost it that it is gone (``revoked``)."""
        platform = self._state.ready_platform
        try:
            engine = await platform.flowork.engines.get(engine_id)
        except ServiceError:
            return
        status = self._status_of(engine_id, engine.embedded)
        for user_id, _ in self.sessions.users():
            may = await self._may_use(user_id, engine_id)
            if self.sessions.mark(user_id, engine_id, known=may) != may:
                shown = status if may else REVOKED
                await self._tell(user_id, status_message(engine_id, shown, engine.name))

    # -- delivery -----------------------------------------------------------------------

    async def _statuses_for(self, platform: Platform, user_id: str) -> list[dict[str, Any]]:
        engines = platform.flowork.engines
        owned = await engines.list_owned(user_id)
        shared = [s.engine for s in await engines.list_shared_with(user_id)]
        return [
            status_message(e.id, self._status_of(e.id, e.embedded), e.name)
            for e in (*owned, *shared)
        ]

    def _status_of(self, engine_id: str, embedded: bool) -> str:
        return "online" if embedded or self.links.by_engine(engine_id) is not None else "offline"

    def _is_embedded(self, engine_id: str) -> bool:
        platform = self._state.platform
        return platform is not None and engine_id == self._embedded_id(platform)

    async def _push_status(self, engine_id: str, status: str, name: str) -> None:
        """``engine_status_update`` to every connected user who may use the engine."""
        message = status_message(engine_id, status, name)
        for user_id, _ in self.sessions.users():
            if await self._may_use(user_id, engine_id):
                self.sessions.mark(user_id, engine_id, known=True)
                await self._tell(user_id, message)

    async def _deliver(
        self,
        engine_id: str,
        event: str,
        message: Mapping[str, Any],
        audience: frozenset[str] | None,
    ) -> None:
        """``message`` as ``event`` to the sessions in ``audience`` (None: all) whose user
        may use the engine now."""
        await self._deliver_many(engine_id, [(event, message, audience)])

    async def _deliver_many(
        self,
        engine_id: str,
        items: Iterable[tuple[str, Mapping[str, Any], frozenset[str] | None]],
    ) -> None:
        """Each ``(event, message, audience)`` in order, as ``_deliver``; the users who
        may use the engine are asked once for the batch. Each message is encoded once,
        for all its sessions."""
        allowed: dict[str, bool] = {}
        for event, message, audience in items:
            sids: list[str] = []
            for session in self.sessions.for_audience(audience):
                may = allowed.get(session.user_id)
                if may is None:
                    may = allowed[session.user_id] = await self._may_use(session.user_id, engine_id)
                if may:
                    sids.append(session.sid)
            if sids:
                await self._send(sids, event, message)

    async def _may_use(self, user_id: str, engine_id: str) -> bool:
        platform = self._state.platform
        if platform is None:
            return False
        cache = platform.flowork.access_cache
        known = cache.may_use_now(user_id, engine_id)
        if known is not None:
            return known
        try:
            return await cache.may_use(user_id, engine_id)
        except ServiceError:
            return False

    async def _emit_user(self, user_id: str, message: Mapping[str, Any]) -> None:
        event = message.get("type")
        if isinstance(event, str) and event:
            sids = (s.sid for s in self.sessions.of_user(user_id))
            await self._send(sids, event, message)

    async def _tell(self, user_id: str, status: Mapping[str, Any]) -> None:
        sids = (s.sid for s in self.sessions.of_user(user_id))
        await self._send(sids, "engine_status_update", status)

    async def _send(self, sids: Iterable[str], event: str, data: Mapping[str, Any]) -> None:
        """One emit (one encoding) for all of ``sids``."""
        targets = list(sids)
        if targets:
            await self.server.emit(event, dict(data), to=targets, namespace=GUI_NAMESPACE)

    async def _send_each(self, sid: str, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        for event, data in items:
            await self.server.emit(event, dict(data), to=sid, namespace=GUI_NAMESPACE)

    async def _emit_engine(self, engine_id: str, event: str, data: Mapping[str, Any]) -> None:
        link = self.links.by_engine(engine_id)
        if link is not None:
            await self.server.emit(event, dict(data), to=link.sid, namespace=ENGINE_NAMESPACE)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(coroutine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(coroutine: Coroutine[Any, Any, None]) -> None:
        try:
            await coroutine
        except Exception:
            log.exception("gateway socket task failed")
