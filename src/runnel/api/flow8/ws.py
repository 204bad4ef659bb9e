"""``/api/ws``: flow8's live events over a WebSocket.

Auth: the session cookie (from this server's own origin), ``Authorization: Bearer <key>``
or ``?token=<key>`` (browsers cannot set headers on a WebSocket). The server pushes, for
the plays of the flows the caller may see:

- ``{"type": "play", "playId", "flowId", "state", "error"?, "seq", "timestamp"}`` when a
  play starts, changes state or ends;
- ``{"type": "layer", "playId", "flowId", "layerId", "ref", "state", "attempt", "out"?,
  "error"?, ...}`` when a flowlet starts, fails or finishes;
- ``{"type": "approval", "playId", "flowId", "layerId", "ref", "message"}`` when a flowlet
  waits for an approval, and ``{"type": "approval", ..., "resolved": true, "approved",
  "by", "comment"}`` once decided;
- ``{"type": "lagged", "missed": n, "playIds": [...]}`` when the client read too slowly
  (re-read those plays with ``GET /api/plays/:id``).

The client may send ``{"type": "subscribe", "playId": ...}`` or ``{"type": "subscribe",
"flowId": ...}`` to narrow the stream to those (several add up), ``{"type":
"unsubscribe"}`` (with the same keys, or none for all) to widen it again, and ``{"type":
"ping"}`` (answered ``pong``). A refused connection gets the flow8 error (401, 403) when
the server supports WebSocket denial responses, else a close with code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from runnel.api.common.auth import authenticate_request, enforce_rate_limit, rate_key
from runnel.api.common.problems import ApiProblem, problem_from_exception
from runnel.api.common.state import ApiState, get_state
from runnel.api.flow8.common import iso
from runnel.api.flow8.errors import CODE, problem_for, render_error
from runnel.bus import Lagged, Subscription
from runnel.model.events import Event, EventType
from runnel.model.execution import ExecutionStatus, NodeStatus
from runnel.model.flow8 import PlayState, error_code, layer_state, play_state
from runnel.model.workflow import Node, Workflow
from runnel.platform import Platform
from runnel.services.access import GroupRole, visible
from runnel.services.accounts import Principal
from runnel.services.errors import NotFound, ServiceError
from runnel.services.flows import flow_resource
from runnel.services.plays import node_skips_on_error

__all__ = ["router"]

router = APIRouter()

DIALECT: Final = "flow8"
GOING_AWAY: Final = 1001
POLICY_VIOLATION: Final = 1008
#: Memberships (who may see what) are read again this often during a connection.
_REFRESH_SECONDS: Final = 30.0


@dataclass(slots=True)
class _Viewer:
    """What one connection may see, and what it asked for."""

    platform: Platform
    principal: Principal
    memberships: dict[str, GroupRole] = field(default_factory=dict)
    loaded_at: float = 0.0
    workflows: dict[str, Workflow | None] = field(default_factory=dict)
    play_ids: set[str] = field(default_factory=set)
    flow_ids: set[str] = field(default_factory=set)

    async def refresh(self) -> None:
        """Read the memberships again (and forget what they allowed)."""
        self.memberships = await self.platform.flow8.access.memberships(self.principal)
        self.workflows.clear()
        self.loaded_at = time.monotonic()

    async def workflow(self, workflow_id: str) -> Workflow | None:
        """The workflow of an event, if the viewer may see it."""
        if time.monotonic() - self.loaded_at > _REFRESH_SECONDS:
            await self.refresh()
        if workflow_id not in self.workflows:
            found = await self.platform.store.get_workflow(workflow_id, include_deleted=True)
            if found is not None and not visible(
                self.principal, self.memberships, flow_resource(found)
            ):
                found = None
            self.workflows[workflow_id] = found
        return self.workflows[workflow_id]

    def wants(self, event: Event) -> bool:
        if not self.play_ids and not self.flow_ids:
            return True
        return event.execution_id in self.play_ids or event.workflow_id in self.flow_ids


def _node(workflow: Workflow, node_id: str | None) -> Node | None:
    for node in workflow.nodes:
        if node.id == node_id:
            return node
    return None


async def _play_state(platform: Platform, event: Event, status: str) -> PlayState:
    """A play's state at an event: the status alone decides, but for a play waiting or
    succeeded, whose state depends on its layers (read from the store)."""
    execution_status = ExecutionStatus(status)
    if execution_status in (ExecutionStatus.WAITING, ExecutionStatus.SUCCEEDED):
        state = await platform.flow8.plays.state_of(event.execution_id)
        if state is not None:
            return state
    return play_state(execution_status)


async def _messages(platform: Platform, event: Event, workflow: Workflow) -> list[dict[str, Any]]:
    """The flow8 messages for one engine event (none for the ones flow8 does not show)."""
    base = {
        "playId": event.execution_id,
        "flowId": event.workflow_id,
        "seq": event.seq,
        "timestamp": iso(event.timestamp),
    }
    data: Mapping[str, Any] = event.data
    kind = event.type
    if kind is EventType.EXECUTION_STARTED:
        return [{"type": "play", **base, "state": PlayState.RUN.value}]
    if kind is EventType.EXECUTION_STATUS:
        state = await _play_state(platform, event, str(data.get("status")))
        return [{"type": "play", **base, "state": state.value}]
    if kind is EventType.EXECUTION_FINISHED:
        state = await _play_state(platform, event, str(data.get("status")))
        message: dict[str, Any] = {"type": "play", **base, "state": state.value}
        ended_error = data.get("error")
        if isinstance(ended_error, Mapping):
            message["error"] = {
                "code": error_code(str(ended_error.get("kind") or "")),
                "message": ended_error.get("message"),
            }
        return [message]
    node = _node(workflow, event.node_id)
    layer = {
        "type": "layer",
        **base,
        "layerId": event.node_id,
        "ref": node.name or node.id if node is not None else event.node_id,
    }
    if kind is EventType.NODE_STARTED:
        return [{**layer, "state": PlayState.RUN.value, "attempt": data.get("attempt")}]
    if kind is EventType.NODE_FINISHED:
        status = NodeStatus(str(data.get("status")))
        state = layer_state(status, skip_on_error=node_skips_on_error(node))
        return [
            {
                **layer,
                "state": state.value,
                "attempt": data.get("attempt"),
                "out": data.get("outputs"),
            }
        ]
    if kind is EventType.NODE_FAILED:
        raw_error = data.get("error")
        failure: Mapping[str, Any] = raw_error if isinstance(raw_error, Mapping) else {}
        retrying = bool(data.get("will_retry"))
        return [
            {
                **layer,
                "state": PlayState.RUN.value if retrying else PlayState.FAIL.value,
                "attempt": data.get("attempt"),
                "retrying": retrying,
                "error": {
                    "code": error_code(str(failure.get("kind") or "")),
                    "message": failure.get("message"),
                },
            }
        ]
    if kind is EventType.APPROVAL_REQUESTED:
        return [
            {**layer, "state": PlayState.WAIT.value},
            {**layer, "type": "approval", "message": data.get("message") or ""},
        ]
    if kind is EventType.APPROVAL_RESOLVED:
        return [
            {
                **layer,
                "type": "approval",
                "resolved": True,
                "approved": data.get("approved"),
                "by": data.get("by"),
                "comment": data.get("comment"),
            }
        ]
    return []


def _dump(message: Mapping[str, Any]) -> str:
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


@router.websocket("/api/ws")
async def flow8_socket(websocket: WebSocket) -> None:
    """Live flow8 events (see the module docstring)."""
    state = get_state(websocket)
    subscription: Subscription | None = None
    try:
        principal = await authenticate_request(
            state, websocket, websocket.query_params.get("token") or None
        )
        enforce_rate_limit(state, rate_key(principal, websocket))
        platform = state.ready_platform
        viewer = _Viewer(platform, principal)
        await viewer.refresh()
        subscription = platform.bus.subscribe(max_queue=state.settings.events_queue_size)
    except Exception as exc:
        if subscription is not None:
            subscription.close()
        problem = problem_for(exc) if isinstance(exc, ServiceError) else problem_from_exception(exc)
        await _refuse(websocket, state, problem)
        return
    await websocket.accept()
    gauge = state.metrics.open_sockets.labels(DIALECT)
    gauge.inc()
    try:
        await websocket.send_text(_dump({"type": "connected", "userId": principal.user_id}))
        await _serve(websocket, subscription, viewer)
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        subscription.close()
        gauge.dec()


async def _refuse(websocket: WebSocket, state: ApiState, problem: ApiProblem) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(render_error(problem))
    else:
        await websocket.close(POLICY_VIOLATION, problem.message[:120])


async def _serve(websocket: WebSocket, subscription: Subscription, viewer: _Viewer) -> None:
    sender = asyncio.ensure_future(_send(websocket, subscription, viewer))
    receiver = asyncio.ensure_future(_receive(websocket, viewer))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        for task in (sender, receiver):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await task
    if sender in done and not sender.cancelled() and sender.exception() is None:
        with contextlib.suppress(Exception):
            await websocket.close(GOING_AWAY)


async def _send(websocket: WebSocket, subscription: Subscription, viewer: _Viewer) -> None:
    async for item in subscription:
        if isinstance(item, Lagged):
            await websocket.send_text(
                _dump(
                    {"type": "lagged", "missed": item.missed, "playIds": sorted(item.execution_ids)}
                )
            )
            continue
        if not viewer.wants(item):
            continue
        workflow = await viewer.workflow(item.workflow_id)
        if workflow is None:
            continue
        for message in await _messages(viewer.platform, item, workflow):
            await websocket.send_text(_dump(message))


async def _receive(websocket: WebSocket, viewer: _Viewer) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text") or message.get("bytes")
        reply = await _handle(viewer, raw)
        if reply is not None:
            await websocket.send_text(_dump(reply))


async def _handle(viewer: _Viewer, raw: str | bytes | None) -> dict[str, Any] | None:
    try:
        document = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return _error("VALIDATION_ERROR", "messages must be JSON objects")
    if not isinstance(document, dict):
        return _error("VALIDATION_ERROR", "messages must be JSON objects")
    kind = document.get("type")
    play_id, flow_id = document.get("playId"), document.get("flowId")
    if kind == "ping":
        return {"type": "pong"}
    if kind == "subscribe":
        if not isinstance(play_id, str) and not isinstance(flow_id, str):
            return _error("VALIDATION_ERROR", "subscribe needs a playId or a flowId")
        try:
            if isinstance(play_id, str):
                await viewer.platform.flow8.plays.get(viewer.principal, play_id)
                viewer.play_ids.add(play_id)
            if isinstance(flow_id, str):
                await viewer.platform.flow8.flows.get(viewer.principal, flow_id)
                viewer.flow_ids.add(flow_id)
        except NotFound as exc:
            problem = problem_for(exc)
            return _error(str(problem.extra.get(CODE)), problem.message)
        return {
            "type": "subscribed",
            "playIds": sorted(viewer.play_ids),
            "flowIds": sorted(viewer.flow_ids),
        }
    if kind == "unsubscribe":
        if isinstance(play_id, str) or isinstance(flow_id, str):
            viewer.play_ids.discard(play_id if isinstance(play_id, str) else "")
            viewer.flow_ids.discard(flow_id if isinstance(flow_id, str) else "")
        else:
            viewer.play_ids.clear()
            viewer.flow_ids.clear()
        return {
            "type": "subscribed",
            "playIds": sorted(viewer.play_ids),
            "flowIds": sorted(viewer.flow_ids),
        }
    return _error(
        "VALIDATION_ERROR", f"unknown message type {kind!r} (subscribe, unsubscribe, ping)"
    )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": code, "message": message}
