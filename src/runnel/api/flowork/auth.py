"""The gateway's three credentials, as FastAPI dependencies (seed 000, "Authentication"):

- crypto auth (``SignedUser``): ``X-User-Address``, ``X-Signed-Message``, ``X-Signature``
  (``X-Payload-Version`` is accepted and ignored); the services check the signature, the
  time window and replays, and auto-register a new address;
- the engine token (``SignedEngine``): ``X-Engine-Token``;
- the gateway secret (``GatewaySecret``): ``X-API-Key`` = ``GATEWAY_SECRET_TOKEN``; closed
  (403) while the server has none.

Each is declared as security headers, so ``/openapi.json`` documents them. ``--no-auth``
does not apply here: on the Flowork surface the signature is the identity.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from runnel.api.common.auth import enforce_rate_limit, rate_key
from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.auth.shared_secret import SecretCheck, check_shared_secret
from runnel.auth.signatures import MessageFormat, SignedMessage, VerifiedSignature
from runnel.services.engines import EngineInfo
from runnel.services.errors import Unauthorized
from runnel.services.identities import FloworkUser

__all__ = [
    "AdminCaller",
    "GatewaySecret",
    "GatewaySecretOrEngine",
    "Signature",
    "SignedEngine",
    "SignedUser",
    "require_admin",
    "require_gateway_secret",
    "require_gateway_secret_or_engine",
    "require_signature",
    "require_signed_engine",
    "require_signed_user",
]

_address = APIKeyHeader(
    name="X-User-Address",
    scheme_name="FloworkAddress",
    auto_error=False,
    description="Crypto auth: the caller's 0x address.",
)
_message = APIKeyHeader(
    name="X-Signed-Message",
    scheme_name="FloworkSignedMessage",
    auto_error=False,
    description="Crypto auth: `flowork_api_auth|<address>|<unix seconds>` (accepted once,"
    " within 300 s of now).",
)
_signature = APIKeyHeader(
    name="X-Signature",
    scheme_name="FloworkSignature",
    auto_error=False,
    description="Crypto auth: the EIP-191 personal_sign signature of the message (0x + 130 hex).",
)
_engine_token = APIKeyHeader(
    name="X-Engine-Token",
    scheme_name="FloworkEngineToken",
    auto_error=False,
    description="An engine's dev_engine_ token.",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    scheme_name="FloworkGatewaySecret",
    auto_error=False,
    description="The gateway secret (GATEWAY_SECRET_TOKEN).",
)

_MISSING_HEADERS = (
    "Missing authentication headers: send X-User-Address, X-Signed-Message and X-Signature"
)


async def require_signed_user(
    request: Request,
    address: Annotated[str | None, Depends(_address)],
    message: Annotated[str | None, Depends(_message)],
    signature: Annotated[str | None, Depends(_signature)],
) -> FloworkUser:
    """The user who signed this request (401 saying why not, 429 over the rate limit)."""
    state = get_state(request)
    signed = _signed_message(address, message, signature)
    try:
        user = await state.ready_platform.flowork.identities.sign_in(signed)
    except Unauthorized as error:
        raise ApiProblem(401, error.message) from None
    enforce_rate_limit(state, f"user:{user.id}")
    return user


async def require_signature(
    request: Request,
    address: Annotated[str | None, Depends(_address)],
    message: Annotated[str | None, Depends(_message)],
    signature: Annotated[str | None, Depends(_signature)],
) -> VerifiedSignature:
    """A valid signed request, whoever's address it is (no account is looked up or made)."""
    signed = _signed_message(address, message, signature)
    identities = get_state(request).ready_platform.flowork.identities
    try:
        return await identities.verify(signed, MessageFormat.API)
    except Unauthorized as error:
        raise ApiProblem(401, error.message) from None


def _signed_message(
    address: str | None, message: str | None, signature: str | None
) -> SignedMessage:
    if not address or not message or not signature:
        raise ApiProblem(401, _MISSING_HEADERS)
    return SignedMessage(address, message, signature)


async def require_signed_engine(
    request: Request, token: Annotated[str | None, Depends(_engine_token)]
) -> EngineInfo:
    """The engine presenting ``X-Engine-Token`` (401 for none or a wrong one)."""
    state = get_state(request)
    enforce_rate_limit(state, "engine:" + rate_key(None, request))
    try:
        return await state.ready_platform.flowork.engines.authenticate(token)
    except Unauthorized as error:
        raise ApiProblem(401, error.message) from None


def require_gateway_secret(request: Request, key: Annotated[str | None, Depends(_api_key)]) -> None:
    """Let in the holders of the gateway secret only (403 while none is configured)."""
    state = get_state(request)
    enforce_rate_limit(state, "secret:" + rate_key(None, request))
    _check_secret(state.settings.gateway_secret_token, key)


async def require_gateway_secret_or_engine(
    request: Request,
    key: Annotated[str | None, Depends(_api_key)],
    token: Annotated[str | None, Depends(_engine_token)],
) -> None:
    """The gateway secret, or the token of a registered engine: a separate engine
    (``runnel engine``) reads what it needs with its own token, never the secret."""
    if token and not key:
        await require_signed_engine(request, token)
        return
    require_gateway_secret(request, key)


def _check_secret(configured: str | None, presented: str | None) -> None:
    check = check_shared_secret(configured, presented)
    if check is SecretCheck.CLOSED:
        raise ApiProblem(403, "This route is closed: the server has no GATEWAY_SECRET_TOKEN set")
    if check is SecretCheck.MISSING:
        raise ApiProblem(401, "Missing gateway secret: send the header X-API-Key")
    if check is SecretCheck.WRONG:
        raise ApiProblem(401, "Invalid gateway secret")


async def require_admin(
    request: Request,
    key: Annotated[str | None, Depends(_api_key)],
    address: Annotated[str | None, Depends(_address)],
    message: Annotated[str | None, Depends(_message)],
    signature: Annotated[str | None, Depends(_signature)],
) -> str:
    """An operator: the gateway secret (``X-API-Key``), or a signed request of an instance
    admin. Returns who it is, for the record (``gateway`` or the admin's user id)."""
    if key is not None:
        require_gateway_secret(request, key)
        return "gateway"
    user = await require_signed_user(request, address, message, signature)
    if not user.principal.is_admin:
        raise ApiProblem(403, "Only an administrator may change the kill switch")
    return user.id


#: A route parameter for the crypto-authenticated caller: ``user: SignedUser``.
SignedUser = Annotated[FloworkUser, Depends(require_signed_user)]
#: A route parameter for a valid signature of any address (no account involved).
Signature = Annotated[VerifiedSignature, Depends(require_signature)]
#: A route parameter for the engine presenting its token.
SignedEngine = Annotated[EngineInfo, Depends(require_signed_engine)]
#: A route dependency: the gateway secret.
GatewaySecret = Depends(require_gateway_secret)
#: A route dependency: the gateway secret or an engine's token.
GatewaySecretOrEngine = Depends(require_gateway_secret_or_engine)
#: A route parameter for an operator (see ``require_admin``).
AdminCaller = Annotated[str, Depends(require_admin)]
