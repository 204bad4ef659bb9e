"""The one authentication rule of the API, and per-key rate limiting.

HTTP routes depend on ``require_api_key``; the event sockets call ``authenticate`` with the
token of their ``Authorization`` header or ``?token=`` query. In ``--no-auth`` mode every
caller is the owner. Every authenticated request takes a token from its key's bucket.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import ApiState, get_state
from runnel.services.accounts import Principal
from runnel.services.errors import Unauthorized

__all__ = [
    "ApiKey",
    "authenticate",
    "bearer_token",
    "enforce_rate_limit",
    "rate_key",
    "require_api_key",
]

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
        raise Unauthorized("Missing API key: send the header 'Authorization: Bearer <key>'")
    return await state.ready_platform.accounts.authenticate_token(token)


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
    principal = await authenticate(state, credentials.credentials if credentials else None)
    enforce_rate_limit(state, rate_key(principal, request))
    return principal


#: A route parameter that requires an API key: ``principal: ApiKey``.
ApiKey = Annotated[Principal, Depends(require_api_key)]
