"""The one authentication rule of the API, and per-key rate limiting.

HTTP routes depend on ``require_api_key``; the event sockets call ``authenticate`` with the
token of their ``Authorization`` header or ``?token=`` query. In ``--no-auth`` mode every
caller is the owner. Every authenticated request takes a token from its key's bucket.

An API key (``Authorization: Bearer``) always wins; without one, a flow8 session cookie
(``runnel.services.sessions``) is accepted too (``authenticate_request``), on every route
that takes a key. A cookie is sent by browsers on their own, so a cookie-authenticated
request that changes state (or opens a socket) must come from the server's own origin: an
``Origin`` header naming another site is refused (403). Clients that send no ``Origin``
(curl, scripts) are not browsers acting for someone else and pass.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import ApiState, get_state
from runnel.services.accounts import Principal
from runnel.services.errors import Forbidden, Unauthorized
from runnel.services.sessions import SESSION_COOKIE

__all__ = [
    "ApiKey",
    "authenticate",
    "authenticate_request",
    "bearer_token",
    "enforce_rate_limit",
    "rate_key",
    "require_api_key",
    "same_origin",
]

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MISSING = "Missing API key: send the header 'Authorization: Bearer <key>'"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer <key>` (see `runnel keys create`).",
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(state: ApiState, token: str | None) -> Principal:
    """Who presents ``token``; raises ``Unauthorized`` (401) for none, a wrong, expired or
    revoked key."""
    if state.settings.no_auth:
        if state.anonymous is None:
            raise ApiProblem(503, "The server is starting or stopping")
        return state.anonymous
    if not token:
        raise Unauthorized(_MISSING)
    return await state.ready_platform.accounts.authenticate_token(token)


def same_origin(connection: HTTPConnection) -> bool:
    """Whether the request's ``Origin`` (if any) is this server's own."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host")
    return bool(host) and urlsplit(origin).netloc.lower() == str(host).lower()


async def authenticate_request(
    state: ApiState, connection: HTTPConnection, token: str | None = None
) -> Principal:
    """Who makes a request or opens a socket: its API key (``token``, else the bearer
    header), else its session cookie (see the module docstring); ``Unauthorized`` for
    neither, ``Forbidden`` for a cookie sent from another site."""
    token = token or bearer_token(connection.headers.get("authorization"))
    cookie = connection.cookies.get(SESSION_COOKIE)
    if state.settings.no_auth or token or not cookie:
        return await authenticate(state, token)
    unsafe = connection.scope["type"] == "websocket" or (
        connection.scope.get("method", "GET") in _UNSAFE_METHODS
    )
    if unsafe and not same_origin(connection):
        raise Forbidden("Refused: a signed-in request from another site (Origin mismatch)")
    return await state.ready_platform.flow8.sessions.authenticate(cookie)


def rate_key(principal: Principal | None, connection: HTTPConnection) -> str:
    """The bucket a request draws from: its API key, else its user, else its address."""
    if principal is not None and principal.key_id:
        return f"key:{principal.key_id}"
    if principal is not None and not connection.app.state.runnel.settings.no_auth:
        return f"user:{principal.user_id}"
    client = connection.client
    return f"addr:{client.host if client else 'unknown'}"


def enforce_rate_limit(state: ApiState, key: str) -> None:
    """Raise 429 with ``Retry-After`` when ``key``'s bucket is empty."""
    limiter = state.limiter
    if limiter is None:
        return
    decision = limiter.check(key)
    if not decision.allowed:
        raise ApiProblem(
            429,
            f"Too many requests: retry after {decision.retry_after_header} s",
            headers={"Retry-After": decision.retry_after_header},
        )


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller's principal (401 without a valid key, 429 over the
    rate limit)."""
    state = get_state(request)
    principal = await authenticate_request(
        state, request, credentials.credentials if credentials else None
    )
    enforce_rate_limit(state, rate_key(principal, request))
    return principal


#: A route parameter that requires an API key: ``principal: ApiKey``.
ApiKey = Annotated[Principal, Depends(require_api_key)]
