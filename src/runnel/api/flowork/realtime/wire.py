"""What the gateway's Socket.IO clients send, checked: GUI connect credentials, job
requests, an engine's connect and its messages. Pure functions; each refusal is a
``WireError`` whose text goes back to the client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from runnel.auth.signatures import SignedMessage, is_address

__all__ = [
    "ENGINE_NAMESPACE",
    "GUI_NAMESPACE",
    "MAX_EVENT_NAME_CHARS",
    "MAX_URL_CHARS",
    "WireError",
    "engine_credentials",
    "gui_credentials",
    "internal_api_url",
    "job_request",
    "relay_request",
    "status_message",
    "vitals_message",
]

GUI_NAMESPACE: Final = "/gui-socket"
ENGINE_NAMESPACE: Final = "/engine-socket"
#: Message types are short identifiers; anything longer is not one.
MAX_EVENT_NAME_CHARS: Final = 64
MAX_URL_CHARS: Final = 2048
_HEADERS: Final = ("X-User-Address", "X-Signed-Message", "X-Signature")
#: The engine-socket events a GUI must never be able to address to an engine: they are
#: the gateway's own commands to it.
_RESERVED: Final = frozenset(
    {
        "connect",
        "disconnect",
        "connect_error",
        "auth_success",
        "auth_failed",
        "force_refresh_auth_list",
        "force_sync_kill_switch",
    }
)


class WireError(ValueError):
    """A message that cannot be accepted; ``str()`` is the text sent back."""


def _lookup(source: Mapping[str, Any], name: str) -> Any:
    """``source[name]``, matching the key without regard to case (headers are
    case-insensitive, and clients spell them differently)."""
    if name in source:
        return source[name]
    lowered = name.lower()
    for key, value in source.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def gui_credentials(auth: object, environ: Mapping[str, Any] | None = None) -> SignedMessage:
    """The three signed values of a GUI connect: from ``auth["headers"]``, else flat in
    ``auth``, else (a client that can set headers) from the handshake's HTTP headers."""
    sources: list[Mapping[str, Any]] = []
    if isinstance(auth, Mapping):
        headers = _lookup(auth, "headers")
        if isinstance(headers, Mapping):
            sources.append(headers)
        sources.append(auth)
    if environ is not None:
        sources.append(
            {name: environ.get("HTTP_" + name.upper().replace("-", "_")) for name in _HEADERS}
        )
    for source in sources:
        values = [_lookup(source, name) for name in _HEADERS]
        if all(isinstance(v, str) and v for v in values):
            return SignedMessage(*values)
    raise WireError(
        'Missing signature: connect with auth = {"headers": {"X-User-Address",'
        ' "X-Signed-Message", "X-Signature"}} signing'
        " 'flowork_socket_auth|<address>|<unix seconds>'"
    )


def engine_credentials(auth: object) -> tuple[str, str]:
    """``(engine_id, token)`` of an engine's connect."""
    if isinstance(auth, Mapping):
        engine_id, token = auth.get("engine_id"), auth.get("token")
        if isinstance(engine_id, str) and engine_id and isinstance(token, str) and token:
            return engine_id, token
    raise WireError('Missing credentials: connect with auth = {"engine_id", "token"}')


def job_request(event: str, data: object) -> dict[str, Any]:
    """The payload of a GUI job request ``{"v": 2, "payload": {..., "target_engine_id"}}``
    sent as event ``event``; its ``type`` is the event name (a ``type`` in the payload
    must agree). A ``user_context`` the client sent is dropped: the gateway sets it."""
    if not isinstance(data, Mapping) or data.get("v") != 2:
        raise WireError(f'Invalid {event} request: expected {{"v": 2, "payload": {{...}}}}')
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise WireError(f"Invalid {event} request: payload must be an object")
    if len(event) > MAX_EVENT_NAME_CHARS or event in _RESERVED:
        raise WireError(f"Unknown request type {event[:MAX_EVENT_NAME_CHARS]!r}")
    kind = payload.get("type", event)
    if kind != event:
        raise WireError(f"Invalid {event} request: its payload type is {kind!r}")
    target = payload.get("target_engine_id")
    if not isinstance(target, str) or not target:
        raise WireError(f"Invalid {event} request: target_engine_id is required")
    clean = {k: v for k, v in payload.items() if k != "user_context"}
    clean["type"] = event
    return clean


def relay_request(data: object) -> tuple[frozenset[str] | None, dict[str, Any]]:
    """``(audience, message)`` of an engine's ``relay_to_gui {audience, message}``;
    addresses lower-cased, an audience of None meaning every user of the engine."""
    if not isinstance(data, Mapping):
        raise WireError('relay_to_gui: expected {"audience", "message"}')
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise WireError("relay_to_gui: message must be an object")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > MAX_EVENT_NAME_CHARS:
        raise WireError("relay_to_gui: message.type must be a short string")
    audience = data.get("audience")
    if audience is None:
        return None, dict(message)
    if not isinstance(audience, list) or not all(is_address(a) for a in audience):
        raise WireError("relay_to_gui: audience must be null or a list of addresses")
    return frozenset(a.strip().lower() for a in audience), dict(message)


def internal_api_url(data: object) -> str | None:
    """The ``internal_api_url`` of ``engine_ready``, if it is an http(s) URL."""
    url = data.get("internal_api_url") if isinstance(data, Mapping) else None
    if (
        isinstance(url, str)
        and len(url) <= MAX_URL_CHARS
        and url.lower().startswith(("http://", "https://"))
    ):
        return url
    return None


def vitals_message(engine_id: str, data: object) -> dict[str, Any]:
    """An engine's vitals as the GUI gets them: what it sent, under its real id (an
    engine cannot speak for another)."""
    body = dict(data) if isinstance(data, Mapping) else {}
    body["engineId"] = engine_id
    return body


def status_message(engine_id: str, status: str, name: str) -> dict[str, Any]:
    """``engine_status_update`` of the gateway: online, offline or revoked."""
    return {"engineId": engine_id, "status": status, "name": name}
