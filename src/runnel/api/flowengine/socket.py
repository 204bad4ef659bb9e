"""``/api/events``: Flow Engine events live over a WebSocket.

Auth: ``Authorization: Bearer <key>`` or ``?token=<key>`` (browsers cannot set headers on a
WebSocket). Filters: ``?execution_id=`` and ``?workflow_id=``. ``?after_seq=N`` (with an
execution id) first replays that execution's stored events after ``N``, then goes on live
with no gap and no duplicate: the socket subscribes *before* reading the store and drops
live events whose ``seq`` it already sent. A client that reads too slowly never slows the
engine: once its queue (``RUNNEL_EVENTS_QUEUE_SIZE``) is full its events are counted, and
after what was queued it receives ``{"type": "Lagged", "missed": n, "execution_ids": [...]}``
and can catch up with ``GET /api/executions/{id}/events?after_seq=``.

A refused connection gets the HTTP error (401, 400, 404, 429) in the Flow Engine format when
the server supports WebSocket denial responses, else a close with code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from runnel.api.common.auth import authenticate, bearer_token, enforce_rate_limit, rate_key
from runnel.api.common.problems import ApiProblem, problem_from_exception
from runnel.api.common.state import ApiState, get_state
from runnel.api.flowengine.events import encode_event, lagged_message
from runnel.bus import EncodeCache, Lagged, Subscription
from runnel.model.events import Event

__all__ = ["EventFilter", "router", "stream_events"]

router = APIRouter()

DIALECT = "flowengine"
#: Close code when the server shuts down (RFC 6455 "going away").
GOING_AWAY = 1001
POLICY_VIOLATION = 1008


@dataclass(frozen=True, slots=True)
class EventFilter:
    execution_id: str | None
    workflow_id: str | None
    after_seq: int | None

    @classmethod
    def from_query(cls, websocket: WebSocket) -> EventFilter:
        query = websocket.query_params
        execution_id = query.get("execution_id") or None
        workflow_id = query.get("workflow_id") or None
        raw = query.get("after_seq")
        after_seq: int | None = None
        if raw is not None and raw != "":
            if not raw.isdigit():
                raise ApiProblem(
                    400,
                    f"Invalid request: query parameter 'after_seq' must be a number >= 0, "
                    f"got {raw!r}",
                )
            if execution_id is None:
                raise ApiProblem(
                    400, "Invalid request: query parameter 'after_seq' needs 'execution_id'"
                )
            after_seq = int(raw)
        return cls(execution_id, workflow_id, after_seq)

    def wants(self, event: Event) -> bool:
        return self.workflow_id is None or event.workflow_id == self.workflow_id


@router.websocket("/api/events")
async def events_socket(websocket: WebSocket) -> None:
    """Stream Flow Engine wire events (see the module docstring)."""
    state = get_state(websocket)
    subscription: Subscription | None = None
    try:
        token = bearer_token(websocket.headers.get("authorization")) or websocket.query_params.get(
            "token"
        )
        principal = await authenticate(state, token)
        enforce_rate_limit(state, rate_key(principal, websocket))
        wanted = EventFilter.from_query(websocket)
        platform = state.ready_platform
        subscription = platform.bus.subscribe(
            execution_id=wanted.execution_id,
            workflow_id=wanted.workflow_id,
            max_queue=state.settings.events_queue_size,
        )
        backlog: Sequence[Event] = []
        if wanted.execution_id is not None and wanted.after_seq is not None:
            backlog = await platform.executions.events(
                wanted.execution_id, after_seq=wanted.after_seq
            )
    except Exception as exc:
        if subscription is not None:
            subscription.close()
        await _refuse(websocket, state, problem_from_exception(exc))
        return
    await websocket.accept()
    gauge = state.metrics.open_sockets.labels(DIALECT)
    gauge.inc()
    try:
        await _serve(websocket, subscription, wanted, backlog, state.encode_cache)
    finally:
        subscription.close()
        gauge.dec()


async def _refuse(websocket: WebSocket, state: ApiState, problem: ApiProblem) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(state.formats.render(websocket.url.path, problem))
    else:
        await websocket.close(POLICY_VIOLATION, problem.message[:120])


async def _serve(
    websocket: WebSocket,
    subscription: Subscription,
    wanted: EventFilter,
    backlog: Sequence[Event],
    cache: EncodeCache,
) -> None:
    """Send until the client leaves (watched concurrently) or the bus closes."""
    sender = asyncio.ensure_future(stream_events(websocket, subscription, wanted, backlog, cache))
    watcher = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            task.cancel()
        for task in (sender, watcher):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await task
    if sender in done and sender.exception() is None:
        # The bus closed: the server is going away.
        with contextlib.suppress(Exception):
            await websocket.close(GOING_AWAY)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) client messages until the client disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def stream_events(
    websocket: WebSocket,
    subscription: Subscription,
    wanted: EventFilter,
    backlog: Sequence[Event],
    cache: EncodeCache,
) -> None:
    """Send ``backlog`` (stored events), then the live ones from ``subscription`` minus
    those already sent, and a ``Lagged`` message wherever the subscription lagged."""
    replay_of = wanted.execution_id if wanted.after_seq is not None else None
    sent_up_to = wanted.after_seq or 0
    for event in backlog:
        if wanted.wants(event):
            frame = encode_event(event)
            if frame is not None:
                await websocket.send_text(frame)
        sent_up_to = max(sent_up_to, event.seq)
    async for item in subscription:
        if isinstance(item, Lagged):
            await websocket.send_text(lagged_message(item.missed, item.execution_ids))
            continue
        if replay_of is not None and item.execution_id == replay_of and item.seq <= sent_up_to:
            continue  # already sent from the store
        if not wanted.wants(item):
            continue
        frame = encode_event(item, cache)
        if frame is not None:
            await websocket.send_text(frame)
