"""``/api/auth``: sign in and out with a session cookie, who am I, API keys."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.auth import authenticate_request, same_origin
from runnel.api.common.body import read_model
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import body_schema
from runnel.api.common.state import get_state
from runnel.api.flow8.common import Caller, PageParams, iso, page_body, parse_time, platform_of
from runnel.api.flow8.errors import Flow8Route
from runnel.api.flow8.render import api_key_json, user_json
from runnel.api.flow8.schemas import ApiKeyBody, LoginBody
from runnel.services.errors import Forbidden
from runnel.services.sessions import SESSION_COOKIE

__all__ = ["router"]

router = APIRouter(prefix="/api/auth", tags=["flow8 auth"], route_class=Flow8Route)


@router.post(
    "/login",
    summary="Sign in (session cookie)",
    openapi_extra=body_schema(LoginBody, "{email, password}"),
)
async def login(request: Request) -> Response:
    """Check ``{email, password}`` and set a new session cookie (HttpOnly, SameSite=Lax,
    Secure over https). Repeated failures are slowed down, then answered 429."""
    if not same_origin(request):
        raise Forbidden("Refused: a sign-in from another site (Origin mismatch)")
    body = await read_model(request, LoginBody)
    sessions = platform_of(request).flow8.sessions
    client = request.client.host if request.client else None
    signed = await sessions.login(
        body.email,
        body.password,
        client=client,
        previous_token=request.cookies.get(SESSION_COOKIE),
    )
    response = JsonResponse({"user": user_json(signed.user), "expiresAt": iso(signed.expires_at)})
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=max(1, int(signed.expires_at - time.time())),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", summary="End the session")
async def logout(request: Request) -> Response:
    """End the session of the cookie on the server (it stops working at once) and clear
    the cookie. Without a cookie, a valid API key is needed (and nothing is ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        if not same_origin(request):
            raise Forbidden("Refused: a sign-out from another site (Origin mismatch)")
        await platform_of(request).flow8.sessions.logout(token)
    else:
        await authenticate_request(get_state(request), request)
    response = JsonResponse({"message": "Logged out"})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/me", summary="Who is signed in")
async def me(request: Request, caller: Caller) -> Response:
    platform = platform_of(request)
    user = await platform.accounts.get_user(caller.user_id)
    body = user_json(user)
    body["authMethod"] = "apiKey" if caller.key_id is not None else "session"
    memberships = await platform.flow8.access.memberships(caller)
    body["groups"] = [{"id": gid, "role": role.value} for gid, role in memberships.items()]
    return JsonResponse(body)


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key",
    openapi_extra=body_schema(ApiKeyBody, "{name, expiresAt?}"),
)
async def create_api_key(request: Request, caller: Caller) -> Response:
    """``{name, expiresAt?}``: the key is in the answer's ``key``, the only time it is
    shown; send it as ``Authorization: Bearer <key>``."""
    body = await read_model(request, ApiKeyBody)
    expires_at = parse_time(body.expiresAt, "expiresAt")
    key, token = await platform_of(request).accounts.create_api_key(
        caller.user_id, body.name, expires_at
    )
    return JsonResponse({**api_key_json(key), "key": token}, 201)


@router.get("/api-keys", summary="List your API keys")
async def list_api_keys(request: Request, caller: Caller, page: PageParams) -> Response:
    """Your keys that are not revoked, without key material."""
    keys = await platform_of(request).accounts.list_api_keys(caller.user_id)
    chunk = keys[page.offset : page.offset + page.size]
    return JsonResponse(page_body([api_key_json(key) for key in chunk], len(keys), page))


@router.delete("/api-keys/{key_id}", summary="Revoke an API key")
async def revoke_api_key(key_id: str, request: Request, caller: Caller) -> Response:
    """The key stops working at once (admins may revoke anyone's)."""
    await platform_of(request).accounts.revoke_api_key(caller.owner_scope, key_id)
    return JsonResponse({"message": "API key revoked", "id": key_id})
