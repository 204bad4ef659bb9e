"""A Python client of Flowork: signs as a Flowork user and speaks the Core Engine socket.

``FloworkSigner`` holds a private key and signs what each Flowork surface expects
(PROTOCOLS.md, "Crypto signature"): the Core Engine envelopes, the gateway's REST headers,
the GUI Socket.IO ``auth`` and preset signatures. Every signed message carries a
millisecond time that never repeats for one signer, since runnel accepts each signed
message once. ``CoreEngineClient`` is an async WebSocket client (the ``websockets``
library) of the Core Engine socket.

``GuiSocketClient`` speaks the gateway's GUI Socket.IO namespace (python-socketio).

No server module is imported here: only eth-account, websockets and python-socketio.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import json
import threading
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import socketio
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = [
    "ENGINE_MESSAGE_PREFIX",
    "CoreEngineClient",
    "CoreEngineClosed",
    "CoreEngineError",
    "FloworkSigner",
    "GuiSocketClient",
    "preset_signing_text",
]

ENGINE_MESSAGE_PREFIX: Final = "Flowork GUI-to-Engine Authentication: "
API_PREFIX: Final = "flowork_api_auth"
SOCKET_PREFIX: Final = "flowork_socket_auth"
GUI_NAMESPACE: Final = "/gui-socket"
#: Messages kept for ``next_message`` while nobody reads them; older ones are dropped.
MAX_BUFFERED: Final = 10_000
DEFAULT_TIMEOUT: Final = 10.0


def preset_signing_text(workflow_data: Any) -> str:
    """What a user signs to save a preset: the compact, key-sorted JSON of
    ``{"workflow_data": ...}``."""
    return json.dumps({"workflow_data": workflow_data}, sort_keys=True, separators=(",", ":"))


class FloworkSigner:
    """One Flowork identity (a secp256k1 key)."""

    def __init__(self, private_key: str | bytes | LocalAccount) -> None:
        self.account: LocalAccount = (
            private_key if isinstance(private_key, LocalAccount) else Account.from_key(private_key)
        )
        self._last_ms = 0
        self._lock = threading.Lock()

    @classmethod
    def generate(cls) -> FloworkSigner:
        """A signer with a new random key."""
        return cls(Account.create())

    @property
    def address(self) -> str:
        """The checksummed address (wallets show this form; runnel compares lower-case)."""
        return str(self.account.address)

    def sign(self, text: str) -> str:
        """EIP-191 ``personal_sign`` of ``text``: ``0x`` and 130 hex characters."""
        signed = self.account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex()

    def stamp_ms(self) -> int:
        """Now in unix milliseconds, strictly after the previous stamp of this signer."""
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            return self._last_ms

    def envelope(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``{"auth": {address, message, signature}, "payload"}`` for the Core Engine."""
        message = f"{ENGINE_MESSAGE_PREFIX}{self.stamp_ms()}"
        return {
            "auth": {"address": self.address, "message": message, "signature": self.sign(message)},
            "payload": dict(payload),
        }

    def _triple(self, prefix: str) -> dict[str, str]:
        # Milliseconds, not seconds: runnel reads either, and they let a client sign more
        # than one distinct message a second.
        message = f"{prefix}|{self.address}|{self.stamp_ms()}"
        return {
            "X-User-Address": self.address,
            "X-Signed-Message": message,
            "X-Signature": self.sign(message),
        }

    def api_headers(self) -> dict[str, str]:
        """The gateway REST headers (``flowork_api_auth|address|time``), fresh each call."""
        return {**self._triple(API_PREFIX), "X-Payload-Version": "2"}

    def socket_auth(self) -> dict[str, Any]:
        """The ``auth`` object of a ``/gui-socket`` connect (``flowork_socket_auth``)."""
        return {"headers": self._triple(SOCKET_PREFIX)}

    def sign_preset(self, workflow_data: Any) -> str:
        """The ``signature`` of ``save_preset`` for ``workflow_data``."""
        return self.sign(preset_signing_text(workflow_data))


class CoreEngineError(Exception):
    """The engine (or the gateway) answered ``{"type": "error", "error": ...}``;
    ``str()`` is that text."""


class CoreEngineClosed(Exception):
    """The connection ended; ``code`` and ``reason`` are the close frame's."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection closed ({code}): {reason}")
        self.code = code
        self.reason = reason


def _with_engine_id(url: str, engine_id: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "engineId"]
    query.append(("engineId", engine_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Inbox:
    """Messages in arrival order; readers take the first of the types they want."""

    def __init__(self) -> None:
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_BUFFERED)
        self._arrived = asyncio.Condition()
        self.closed: CoreEngineClosed | None = None

    async def put(self, message: dict[str, Any]) -> None:
        async with self._arrived:
            self._buffer.append(message)
            self._arrived.notify_all()

    async def close(self, ended: CoreEngineClosed) -> None:
        async with self._arrived:
            if self.closed is None:
                self.closed = ended
            self._arrived.notify_all()

    def discard(self, *types: str) -> None:
        kept = [m for m in self._buffer if m.get("type") not in types]
        self._buffer.clear()
        self._buffer.extend(kept)

    async def take(
        self,
        wanted: tuple[str, ...] | None,
        timeout: float | None,  # noqa: ASYNC109 - the caller's limit
    ) -> dict[str, Any]:
        def first() -> dict[str, Any] | None:
            for index, message in enumerate(self._buffer):
                if wanted is None or message.get("type") in wanted:
                    del self._buffer[index]
                    return message
            return None

        async with asyncio.timeout(timeout), self._arrived:
            while True:
                found = first()
                if found is not None:
                    return found
                if self.closed is not None:
                    raise self.closed
                await self._arrived.wait()


class _Receiver(abc.ABC):
    """``next_message``, ``messages`` and ``request`` over an inbox; ``send`` is the
    transport's."""

    def __init__(self) -> None:
        self._inbox = _Inbox()
        self._request_lock = asyncio.Lock()

    @property
    def closed(self) -> CoreEngineClosed | None:
        """How the connection ended; None while it is open."""
        return self._inbox.closed

    @abc.abstractmethod
    async def open(self) -> Self:
        """Connect; returns the client."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; messages not taken yet stay readable."""

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def send(self, payload: Mapping[str, Any]) -> None:
        """Send one client message (each transport signs and frames it its own way)."""

    async def request(
        self,
        payload: Mapping[str, Any],
        expect_type: str,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a per-answer limit, by design
    ) -> dict[str, Any]:
        """Send ``payload`` and return the first ``expect_type`` message after it;
        ``CoreEngineError`` when an error answer comes first. Buffered messages of those
        types are dropped first (a stale one must not answer a new request)."""
        async with self._request_lock:
            self._inbox.discard(expect_type, "error")
            await self.send(payload)
            message = await self.next_message((expect_type, "error"), timeout)
        if message.get("type") == "error" and expect_type != "error":
            raise CoreEngineError(str(message.get("error")))
        return message

    async def next_message(
        self,
        type: str | tuple[str, ...] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a per-message limit
    ) -> dict[str, Any]:
        """The first message (of ``type``, one of several, or any) not taken yet.
        ``TimeoutError`` (None: wait without limit); ``CoreEngineClosed`` once the
        connection ended."""
        return await self._inbox.take((type,) if isinstance(type, str) else type, timeout)

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Every message in order, as it comes, until the connection ends."""
        while True:
            try:
                yield await self.next_message(None, timeout=None)
            except CoreEngineClosed:
                return


class CoreEngineClient(_Receiver):
    """``async with CoreEngineClient.connect(url, engine_id, signer) as engine: ...``

    Everything the engine sends is buffered in order; ``next_message`` takes the first of
    a type (leaving the others), ``messages`` takes them all as they come, ``request``
    sends a payload and waits for its answer (one request at a time)."""

    def __init__(
        self,
        url: str,
        engine_id: str,
        signer: FloworkSigner,
        *,
        max_size: int | None = 16 * 1024 * 1024,
    ) -> None:
        super().__init__()
        self.url = _with_engine_id(url, engine_id)
        self.engine_id = engine_id
        self.signer = signer
        self._max_size = max_size
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def connect(cls, url: str, engine_id: str, signer: FloworkSigner) -> CoreEngineClient:
        """A client to open with ``async with`` (or ``await client.open()``)."""
        return cls(url, engine_id, signer)

    async def open(self) -> CoreEngineClient:
        self._connection = await connect(self.url, max_size=self._max_size)
        self._reader = asyncio.create_task(self._read(), name="core-engine-client")
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def send(self, payload: Mapping[str, Any]) -> None:
        """Sign ``payload`` and send it."""
        await self.send_raw(json.dumps(self.signer.envelope(payload)))

    async def send_raw(self, frame: str | bytes) -> None:
        """Send a frame as it is (tests use it for what a bad client sends)."""
        if self._connection is None:
            raise RuntimeError("not connected: use async with or open()")
        try:
            await self._connection.send(frame)
        except ConnectionClosed as closed:
            raise _ended(closed) from None

    async def _read(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            async for frame in connection:
                try:
                    message = json.loads(frame)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    await self._inbox.put(message)
            ended = CoreEngineClosed(connection.close_code, connection.close_reason or "")
        except ConnectionClosed as closed:
            ended = _ended(closed)
        await self._inbox.close(ended)


def _ended(closed: ConnectionClosed) -> CoreEngineClosed:
    frame = closed.rcvd
    return CoreEngineClosed(
        frame.code if frame is not None else None, frame.reason if frame is not None else ""
    )


class GuiSocketClient(_Receiver):
    """The gateway's GUI Socket.IO namespace, as the Flowork GUI uses it:
    ``async with GuiSocketClient.connect(gateway_url, signer) as gui: ...``.

    ``send(payload, engine_id)`` emits a job request (event = the payload's type, data
    ``{"v": 2, "payload": {..., "target_engine_id"}}``); every event the gateway sends is
    buffered as its data with ``type`` = the event's name (``error`` for refusals)."""

    def __init__(
        self,
        url: str,
        signer: FloworkSigner,
        *,
        engine_id: str | None = None,
        socketio_path: str = "socket.io",
    ) -> None:
        super().__init__()
        self.url = url
        self.signer = signer
        #: Where ``send``/``request`` go unless told otherwise.
        self.engine_id = engine_id
        self._path = socketio_path
        self._sio: socketio.AsyncClient | None = None

    @classmethod
    def connect(
        cls, url: str, signer: FloworkSigner, *, engine_id: str | None = None
    ) -> GuiSocketClient:
        return cls(url, signer, engine_id=engine_id)

    async def open(self) -> GuiSocketClient:
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("*", self._on_event, namespace=GUI_NAMESPACE)
        sio.on("disconnect", self._on_disconnect, namespace=GUI_NAMESPACE)
        await sio.connect(
            self.url,
            namespaces=[GUI_NAMESPACE],
            auth=self.signer.socket_auth(),
            socketio_path=self._path,
            transports=["websocket"],
            wait_timeout=DEFAULT_TIMEOUT,
        )
        self._sio = sio
        return self

    async def close(self) -> None:
        if self._sio is not None:
            await self._sio.disconnect()
        await self._inbox.close(CoreEngineClosed(None, "closed by the client"))

    async def send(self, payload: Mapping[str, Any], engine_id: str | None = None) -> None:
        """Emit the job request ``payload`` for ``engine_id`` (default: ``self.engine_id``)."""
        if self._sio is None:
            raise RuntimeError("not connected: use async with or open()")
        kind = payload.get("type")
        if not isinstance(kind, str) or not kind:
            raise ValueError("payload needs a type")
        target = engine_id or self.engine_id
        body = dict(payload) if target is None else {**payload, "target_engine_id": target}
        await self._sio.emit(kind, {"v": 2, "payload": body}, namespace=GUI_NAMESPACE)

    async def _on_event(self, event: str, *args: Any) -> None:
        data = args[0] if args else None
        message = (
            {**data, "type": event} if isinstance(data, Mapping) else {"type": event, "data": data}
        )
        await self._inbox.put(message)

    async def _on_disconnect(self, *args: Any) -> None:
        await self._inbox.close(CoreEngineClosed(None, "disconnected by the gateway"))
