"""The Core Engine socket (seed 002): a WebSocket at ``/`` and ``/engine/ws``.

``?engineId=`` must name the engine, else the connection is closed with 1008. Each text
frame is a signed envelope ``{"auth", "payload"}`` of at most ``MAX_FRAME_BYTES``; the
engine (``runnel.services.core_engine.CoreEngine``) checks it and answers, and the answers
go back in order. A bad frame gets ``{"type": "error", "error"}`` and the connection stays.
The connection also receives what the engine says unasked (job events, status updates)
when its audience holds the address of the connection's last verified envelope and that
address may still use the engine (checked per batch of what queued up meanwhile). Those go
through a bounded outbox: a client that reads too slowly loses messages (and is told so
with a ``log`` WARN), the engine never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from runnel.services.core_engine import CoreEngine, EnvelopeRejected, Outgoing

__all__ = [
    "MAX_FRAME_BYTES",
    "OUTBOX_SIZE",
    "POLICY_VIOLATION",
    "engine_socket_routes",
]

log = logging.getLogger(__name__)

MAX_FRAME_BYTES: Final = 1024 * 1024
#: Unasked messages waiting for one slow connection before newer ones are dropped.
OUTBOX_SIZE: Final = 1000
#: Most unasked messages sent after one permission check.
MAX_BATCH: Final = 100
POLICY_VIOLATION: Final = 1008
PATHS: Final = ("/", "/engine/ws")

GetEngine = Callable[[], CoreEngine | None]


def engine_socket_routes(get_engine: GetEngine) -> list[BaseRoute]:
    """The socket's routes; ``get_engine`` gives the engine (None while starting)."""

    async def endpoint(websocket: WebSocket) -> None:
        await _serve(websocket, get_engine())

    return [WebSocketRoute(path, endpoint) for path in PATHS]


def _dumps(message: Mapping[str, Any]) -> str:
    return orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Connection:
    """One client: its address (once an envelope verified), its outbox and its writer."""

    def __init__(self, websocket: WebSocket, engine: CoreEngine, outbox_size: int) -> None:
        self.websocket = websocket
        self.engine = engine
        self.address: str | None = None
        self.outbox: asyncio.Queue[Outgoing] = asyncio.Queue(outbox_size)
        self.dropped = 0
        # Answers (reader) and pushed messages (writer) must not interleave in one send.
        self.sending = asyncio.Lock()

    def offer(self, outgoing: Outgoing) -> None:
        """The engine's listener: never blocks, drops when the outbox is full."""
        address = self.address
        if address is None:
            return
        if outgoing.audience is not None and address not in outgoing.audience:
            return
        try:
            self.outbox.put_nowait(outgoing)
        except asyncio.QueueFull:
            self.dropped += 1

    async def send(self, message: Mapping[str, Any]) -> None:
        async with self.sending:
            await self.websocket.send_text(_dumps(message))

    async def write(self) -> None:
        """Deliver the outbox in order, in batches of what queued up meanwhile, checking
        before each batch that the address may (still) see it (``CoreEngine.may_see``:
        remembered for a moment, forgotten at once when a revoke is announced)."""
        while True:
            batch = [await self.outbox.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self.outbox.get_nowait())
                except asyncio.QueueEmpty:
                    break
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                await self.send(
                    {
                        "type": "log",
                        "level": "WARN",
                        "source": "Engine",
                        "message": f"{dropped} messages were dropped: this connection reads"
                        " too slowly",
                        "timestamp": _now_iso(),
                    }
                )
            address = self.address
            try:
                allowed = address is not None and await self.engine.may_see(address)
            except Exception:  # the store may be away for a moment: skip, never die
                log.exception("engine socket: could not check who may see a message")
                continue
            if allowed:
                async with self.sending:
                    for outgoing in batch:
                        await self.websocket.send_text(_dumps(outgoing.message))

    async def answer(self, frame: str | bytes) -> None:
        size = len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode())
        if size > MAX_FRAME_BYTES:
            await self.send(
                {"type": "error", "error": f"Message too large: at most {MAX_FRAME_BYTES} bytes"}
            )
            return
        try:
            user, payload = await self.engine.open_envelope(frame)
        except EnvelopeRejected as rejected:
            await self.send({"type": "error", "error": str(rejected)})
            return
        self.address = user.address
        for message in await self.engine.handle(user, payload):
            await self.send(message)


async def _serve(websocket: WebSocket, engine: CoreEngine | None) -> None:
    await websocket.accept()
    # Accepted first so that the client sees the close code (a refused handshake is a bare
    # HTTP 403); nothing is read from a connection closed here.
    if engine is None:
        await websocket.close(POLICY_VIOLATION, "The engine is not running")
        return
    if websocket.query_params.get("engineId") != engine.engine_id:
        await websocket.close(POLICY_VIOLATION, "Wrong or missing engineId")
        return
    connection = _Connection(websocket, engine, OUTBOX_SIZE)
    stop_listening = engine.listen(connection.offer)
    writer = asyncio.create_task(connection.write(), name="engine-socket-writer")
    try:
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
            frame = received.get("text")
            if frame is None:
                frame = received.get("bytes") or b""
            await connection.answer(frame)
            if writer.done():
                break
    except (WebSocketDisconnect, OSError):
        pass  # the client went away (uvicorn's ClientDisconnected is an OSError)
    except Exception:
        log.exception("engine socket: connection failed")
    finally:
        stop_listening()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()
