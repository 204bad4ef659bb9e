"""``/api/v1/auth``: the profile (sign-in by signature, auto-registering a new address),
logout, linking an address to an API-key user, and the two routes the seed marks unused."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from runnel.api.common.auth import ApiKey
from runnel.api.common.jsonbody import JsonResponse
from runnel.api.common.openapi import error_responses
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.api.flowork.auth import Signature, SignedUser
from runnel.api.flowork.schemas import FloworkError, FloworkMessage, FloworkProfile
from runnel.api.flowork.wire import profile_json
from runnel.services.identities import profile_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["flowork: auth"])

_SIGNATURE_SIGN_IN = (
    "Not used: sign in with a signature instead. Sign 'flowork_api_auth|<address>|<unix"
    " seconds>' with your key and send it in X-User-Address, X-Signed-Message and X-Signature;"
    " GET /api/v1/auth/profile registers a new address."
)


@router.get(
    "/profile",
    response_model=FloworkProfile,
    responses=error_responses(FloworkError, 401, 429),
    summary="Sign in: the caller's profile",
)
async def profile(user: SignedUser) -> Response:
    """The signed-in user's profile; an address that signs correctly for the first time
    becomes a new user (``{id, username, email, address, tier, permissions}``)."""
    return JsonResponse(profile_json(profile_of(user.user)))


@router.post(
    "/logout",
    response_model=FloworkMessage,
    responses=error_responses(FloworkError, 401, 429),
    summary="Log out",
)
async def logout(user: SignedUser) -> Response:
    """Acknowledges: signatures are stateless, so there is nothing to end on the server."""
    return JsonResponse({"message": "Logged out", "status": "success"})


@router.post(
    "/link-address",
    response_model=FloworkProfile,
    responses=error_responses(FloworkError, 401, 409, 429),
    summary="Link a signing address to an API-key user (runnel)",
)
async def link_address(request: Request, principal: ApiKey, signature: Signature) -> Response:
    """Prove both identities at once: an API key (``Authorization: Bearer``) and a request
    signed with the address. The address joins the key's user, who may then sign in with
    it. 409 if it belongs to another user (say, it signed in on its own before)."""
    identities = get_state(request).ready_platform.flowork.identities
    user = await identities.link_address(principal.user_id, signature.address)
    return JsonResponse(profile_json(profile_of(user)))


@router.post(
    "/register",
    status_code=501,
    responses=error_responses(FloworkError, 501),
    summary="Not used (identities are keys)",
)
async def register() -> Response:
    """501: identity creation happens in the client, by generating a key."""
    raise ApiProblem(501, _SIGNATURE_SIGN_IN)


@router.post(
    "/login",
    status_code=501,
    responses=error_responses(FloworkError, 501),
    summary="Not used (sign in with a signature)",
)
async def login() -> Response:
    """501: sign in with a signed request to ``GET /api/v1/auth/profile``."""
    raise ApiProblem(501, _SIGNATURE_SIGN_IN)
