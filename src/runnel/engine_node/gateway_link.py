"""The engine's link to its gateway: a Socket.IO client of ``<gateway>/engine-socket``.

One connection at a time, made again with capped, jittered exponential backoff whenever
the gateway goes away or cannot be reached; a refused token is retried slowly (an owner
may give the engine its token back) and said loudly in the log. The engine keeps running
its jobs meanwhile: the link only carries messages.

While connected (after ``auth_success``) the link:

- emits ``engine_ready {"internal_api_url"}`` and then ``engine_vitals_update`` every
  ``VITALS_SECONDS``;
- fetches the authorization list (``get-engine-auth-info``) and the kill-switch list
  (``disabled-components``), both with ``X-Engine-Token``, and again on
  ``force_refresh_auth_list`` and ``force_sync_kill_switch`` (whose list it applies as sent);
- answers the relayed job requests (any event whose data is ``{"v": 2, "payload": {...,
  "user_context": {"user_id", "address"}}}``) through the engine, each answer sent back as
  ``relay_to_gui {"audience": [address], "message"}``;
- forwards what the engine publishes (job events) as ``relay_to_gui``; the engine's
  ``engine_status_update`` tick is not forwarded (the vitals carry it).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import httpx
import socketio

from runnel.services.core_engine.types import EngineUser, Outgoing

__all__ = [
    "NAMESPACE",
    "VITALS_SECONDS",
    "Backoff",
    "GatewayLink",
    "LinkHooks",
    "LinkedEngine",
]

log = logging.getLogger(__name__)

NAMESPACE: Final = "/engine-socket"
VITALS_SECONDS: Final = 10.0
#: How long the gateway gets to say ``auth_success`` or ``auth_failed`` after connecting.
_AUTH_WAIT_SECONDS: Final = 30.0
#: Outgoing messages buffered while the socket is slow; beyond, they are dropped.
_OUTBOX_SIZE: Final = 1000
_HTTP_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)


class LinkedEngine(Protocol):
    """What the link needs of the engine (``runnel.services.core_engine.CoreEngine``)."""

    async def handle(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> Sequence[Mapping[str, Any]]: ...

    def listen(self, listener: Callable[[Outgoing], None]) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True)
class LinkHooks:
    """What the link does with what the gateway tells it."""

    #: Whether ``address`` may use the engine (the list last fetched).
    is_authorized: Callable[[str], Awaitable[bool]]
    #: The fetched list: every authorized address, and the owner's when the gateway says.
    apply_auth_list: Callable[[list[str], str | None], Awaitable[None]]
    #: The kill-switch list (component ids) to apply to the engine's executor.
    apply_kill_switch: Callable[[list[str]], Awaitable[None]]
    #: ``{isBusy, cpuPercent, memoryPercent}`` now (``engineId`` is added).
    vitals: Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between attempts: ``initial * 2**n`` capped at ``maximum``, each jittered to
    between half and all of it (so that engines cut off together do not return together);
    ``refused`` after the gateway refused the token."""

    initial: float = 1.0
    maximum: float = 30.0
    refused: float = 60.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        spread: float = (rng or random).random()
        return ceiling * (0.5 + 0.5 * spread)


class _Outcome(enum.Enum):
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    LOST = "lost"
    STOPPED = "stopped"


class _Refused(Exception):
    """The gateway refused this engine's token."""


class GatewayLink:
    """Run with ``run()`` (until ``stop()``); ``connected`` says whether the gateway
    accepted the engine and the link is up."""

    def __init__(
        self,
        *,
        gateway_url: str,
        engine_id: str,
        token: str,
        internal_api_url: str,
        engine: LinkedEngine,
        hooks: LinkHooks,
        backoff: Backoff | None = None,
        http: httpx.AsyncClient | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.engine_id = engine_id
        self.internal_api_url = internal_api_url
        self._token = token
        self._engine = engine
        self._hooks = hooks
        self._backoff = backoff or Backoff()
        self._http = http
        self._own_http = http is None
        self._say = say or (lambda text: log.info("%s", text))
        self._stop = asyncio.Event()
        self.connected = False
        #: Set each time the gateway accepts the engine (for whoever waits for it).
        self.on_connected: Callable[[], None] | None = None

    # -- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, reconnect, until ``stop()``."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=_HTTP_TIMEOUT)
        attempt = 0
        try:
            while not self._stop.is_set():
                try:
                    outcome = await self._session()
                except Exception:  # a bug or a surprise must not end the link for good
                    log.exception("gateway link: the connection failed unexpectedly")
                    outcome = _Outcome.UNREACHABLE
                if outcome is _Outcome.STOPPED or self._stop.is_set():
                    break
                if outcome is _Outcome.LOST:
                    attempt = 0  # it was up: start the backoff over
                if outcome is _Outcome.REFUSED:
                    wait = self._backoff.refused
                else:
                    wait = self._backoff.delay(attempt)
                    attempt += 1
                self._say(f"gateway: trying again in {wait:.1f} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
        finally:
            if self._own_http and self._http is not None:
                await self._http.aclose()
                self._http = None

    def stop(self) -> None:
        self._stop.set()

    async def _session(self) -> _Outcome:
        """One connection, from connecting to its end."""
        client = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False)
        session = _Session(self, client)
        try:
            return await session.run()
        finally:
            self.connected = False
            await session.close()

    # -- what the gateway is asked --------------------------------------------------------

    async def fetch_auth_list(self) -> None:
        """``get-engine-auth-info`` into the engine's authorization list."""
        body = await self._get("/api/v1/engine/get-engine-auth-info")
        addresses = body.get("authorized_addresses") if isinstance(body, dict) else None
        if not isinstance(addresses, list):
            raise ValueError("get-engine-auth-info: no authorized_addresses list")
        owner = body.get("owner_address")
        clean = sorted({str(a).lower() for a in addresses if isinstance(a, str)})
        await self._hooks.apply_auth_list(clean, owner.lower() if isinstance(owner, str) else None)
        self._say(f"gateway: authorization list: {len(clean)} addresses")

    async def fetch_kill_switch(self) -> None:
        """``disabled-components`` onto the engine's executor."""
        body = await self._get("/api/v1/system/disabled-components")
        if not isinstance(body, list):
            raise ValueError("disabled-components: not a list")
        await self.apply_kill_switch(body)

    async def apply_kill_switch(self, components: object) -> None:
        ids = [c for c in components if isinstance(c, str)] if isinstance(components, list) else []
        await self._hooks.apply_kill_switch(ids)
        self._say(f"gateway: kill switch: {len(ids)} components disabled")

    async def _get(self, path: str) -> Any:
        assert self._http is not None
        answer = await self._http.get(
            self.gateway_url + path, headers={"X-Engine-Token": self._token}
        )
        if answer.status_code == 401:
            raise _Refused(f"{path}: {answer.text}")
        answer.raise_for_status()
        return answer.json()

    async def vitals(self) -> dict[str, Any]:
        return {"engineId": self.engine_id, **(await self._hooks.vitals())}

    def auth(self) -> dict[str, str]:
        return {"engine_id": self.engine_id, "token": self._token}


class _Session:
    """One Socket.IO connection and the tasks that live as long as it."""

    def __init__(self, link: GatewayLink, client: socketio.AsyncClient) -> None:
        self.link = link
        self.client = client
        self.accepted = asyncio.Event()
        self.ended = asyncio.Event()
        self.refusal: str | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.requests: asyncio.Queue[tuple[str, Mapping[str, Any]]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_OUTBOX_SIZE)
        self.unlisten: Callable[[], None] | None = None
        self.dropped = 0
        client.on("auth_success", self._on_auth_success, namespace=NAMESPACE)
        client.on("auth_failed", self._on_auth_failed, namespace=NAMESPACE)
        client.on("connect_error", self._on_connect_error, namespace=NAMESPACE)
        client.on("disconnect", self._on_disconnect, namespace=NAMESPACE)
        client.on("force_refresh_auth_list", self._on_refresh_auth, namespace=NAMESPACE)
        client.on("force_sync_kill_switch", self._on_kill_switch, namespace=NAMESPACE)
        client.on("*", self._on_any, namespace=NAMESPACE)

    async def run(self) -> _Outcome:
        link = self.link
        try:
            await self.client.connect(
                link.gateway_url,
                auth=link.auth(),
                namespaces=[NAMESPACE],
                socketio_path="socket.io",
                transports=["websocket"],
                wait_timeout=int(_AUTH_WAIT_SECONDS),
            )
        except socketio.exceptions.ConnectionError as error:
            if self.refusal is not None:
                return self._refused()
            link._say(f"gateway: cannot connect to {link.gateway_url}: {error}")
            return _Outcome.UNREACHABLE
        stop = asyncio.ensure_future(link._stop.wait())
        accepted = asyncio.ensure_future(self.accepted.wait())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait(
                {stop, accepted, ended},
                timeout=_AUTH_WAIT_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if stop.done():
                return _Outcome.STOPPED
            if self.refusal is not None:
                return self._refused()
            if not accepted.done():
                link._say("gateway: connected, but it neither accepted nor refused the engine")
                return _Outcome.UNREACHABLE
            try:
                await self._serve()
            except _Refused as error:
                self.refusal = str(error)
                return self._refused()
            done, _ = await asyncio.wait({stop, ended}, return_when=asyncio.FIRST_COMPLETED)
            if stop in done:
                return _Outcome.STOPPED
            if self.refusal is not None:
                return self._refused()
            link._say("gateway: connection lost")
            return _Outcome.LOST
        finally:
            for waiter in (stop, accepted, ended):
                waiter.cancel()

    def _refused(self) -> _Outcome:
        self.link._say(
            f"gateway: REFUSED engine {self.link.engine_id}: {self.refusal or 'no reason given'}"
            " (is the token right? was it reset? was the engine deleted?)"
        )
        return _Outcome.REFUSED

    async def _serve(self) -> None:
        """Accepted: say where the API is, take the lists, start the background work."""
        link = self.link
        await self._emit("engine_ready", {"internal_api_url": link.internal_api_url})
        for fetch, what in (
            (link.fetch_auth_list, "authorization list"),
            (link.fetch_kill_switch, "kill-switch list"),
        ):
            try:
                await fetch()
            except _Refused:
                raise
            except Exception as error:  # keep the last list; the gateway may push again
                log.warning("could not fetch the %s: %s", what, error)
        link.connected = True
        self.unlisten = link._engine.listen(self._publish)
        for work in (self._vitals(), self._requests(), self._send_outbox()):
            self._spawn(work)
        link._say(f"gateway: connected to {link.gateway_url} as engine {link.engine_id}")
        if link.on_connected is not None:
            link.on_connected()

    async def close(self) -> None:
        if self.unlisten is not None:
            self.unlisten()
            self.unlisten = None
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        if self.dropped:
            log.warning("dropped %d messages for the gateway (the link was slow)", self.dropped)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway link task failed", exc_info=task.exception())

    # -- events from the gateway ----------------------------------------------------------

    async def _on_auth_success(self, data: object = None) -> None:
        self.accepted.set()

    async def _on_auth_failed(self, data: object = None) -> None:
        error = data.get("error") if isinstance(data, dict) else data
        self.refusal = str(error) if error else "auth_failed"
        self.ended.set()

    async def _on_connect_error(self, data: object = None) -> None:
        # The namespace's connect handler refused: Socket.IO sends {"message": ...}. A
        # gateway that cannot be reached at all gives a plain string here instead.
        if isinstance(data, dict):
            self.refusal = str(data.get("message") or data.get("error") or data)
        self.ended.set()

    async def _on_disconnect(self, reason: object = None) -> None:
        self.link.connected = False
        self.ended.set()

    async def _on_refresh_auth(self, data: object = None) -> None:
        self._spawn(self._refetch_auth())

    async def _refetch_auth(self) -> None:
        try:
            await self.link.fetch_auth_list()
        except Exception as error:
            log.warning("could not refresh the authorization list: %s", error)

    async def _on_kill_switch(self, data: object = None) -> None:
        components = data.get("components") if isinstance(data, dict) else data
        if isinstance(components, list):
            self._spawn(self.link.apply_kill_switch(components))
        else:
            self._spawn(self._refetch_kill_switch())

    async def _refetch_kill_switch(self) -> None:
        try:
            await self.link.fetch_kill_switch()
        except Exception as error:
            log.warning("could not fetch the kill-switch list: %s", error)

    async def _on_any(self, event: str, data: object = None) -> None:
        """A relayed job request, answered in the order they came."""
        payload = _relayed_payload(data)
        if payload is None:
            log.debug("ignored gateway event %r", event)
            return
        self.requests.put_nowait((event, payload))

    # -- background work while connected --------------------------------------------------

    async def _requests(self) -> None:
        while True:
            event, payload = await self.requests.get()
            try:
                await self._answer(event, payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a relayed %s request failed", event)

    async def _answer(self, event: str, payload: Mapping[str, Any]) -> None:
        context = payload.get("user_context")
        assert isinstance(context, Mapping)
        address = str(context.get("address") or "").lower()
        user_id = context.get("user_id")
        message = {k: v for k, v in payload.items() if k != "user_context"}
        message.setdefault("type", event)
        if not address:
            return
        if not await self.link._hooks.is_authorized(address):
            answers: Sequence[Mapping[str, Any]] = [
                {
                    "type": "error",
                    "error": f"User not authorized for engine {self.link.engine_id}",
                }
            ]
        else:
            user = EngineUser(address, user_id if isinstance(user_id, str) else None)
            answers = await self.link._engine.handle(user, message)
        for answer in answers:
            await self._emit("relay_to_gui", {"audience": [address], "message": dict(answer)})

    def _publish(self, outgoing: Outgoing) -> None:
        if outgoing.message.get("type") == "engine_status_update":
            # The engine's own status tick: the gateway hears it as engine_vitals_update
            # (``_vitals``); its engine_status_update means online or offline.
            return
        audience = sorted(outgoing.audience) if outgoing.audience is not None else None
        try:
            self.outbox.put_nowait({"audience": audience, "message": dict(outgoing.message)})
        except asyncio.QueueFull:
            self.dropped += 1

    async def _send_outbox(self) -> None:
        while True:
            item = await self.outbox.get()
            await self._emit("relay_to_gui", item)

    async def _vitals(self) -> None:
        while True:
            try:
                await self._emit("engine_vitals_update", await self.link.vitals())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not send the vitals: %s", error)
            await asyncio.sleep(VITALS_SECONDS)

    async def _emit(self, event: str, data: Mapping[str, Any]) -> None:
        """Send ``event``; a connection that just ended loses it (the session is over)."""
        try:
            await self.client.emit(event, data, namespace=NAMESPACE)
        except socketio.exceptions.SocketIOError as error:
            log.debug("%s not sent: %s", event, error)


def _relayed_payload(data: object) -> Mapping[str, Any] | None:
    """The payload of ``{"v": 2, "payload": {..., "user_context": {...}}}``, else None."""
    if not isinstance(data, Mapping) or data.get("v") != 2:
        return None
    payload = data.get("payload")
    if not isinstance(payload, Mapping) or not isinstance(payload.get("user_context"), Mapping):
        return None
    return payload
