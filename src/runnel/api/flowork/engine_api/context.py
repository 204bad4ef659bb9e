"""What the engine's REST API works with, and who calls it.

The gateway calls an engine on behalf of a user it has authenticated: it sends its key for
that engine in ``X-API-Key`` and the user in ``X-Flowork-User-Address`` (and
``X-Flowork-User-ID``). The engine trusts those headers only with the right key. The
embedded engine is called in-process with a key made at start; a separate engine process
(``runnel engine``) expects ``engine_api_key(GATEWAY_SECRET_TOKEN, its engine id)``
(``runnel.auth.shared_secret``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from fastapi import Request

from runnel.api.common.problems import ApiProblem
from runnel.auth.shared_secret import SecretCheck, check_shared_secret
from runnel.auth.signatures import InvalidSignature, normalize_address
from runnel.engine.registry import NodeRegistry
from runnel.services.dashboard import DashboardService
from runnel.services.presets import PresetService
from runnel.services.share_links import PresetAction, ShareGrant
from runnel.services.variables import VariableService

__all__ = [
    "ENGINE_ID_HEADER",
    "SHARE_TOKEN_HEADER",
    "USER_ADDRESS_HEADER",
    "USER_ID_HEADER",
    "EngineApiContext",
    "EngineCaller",
    "ShareGrants",
    "caller_of",
    "context_of",
]

USER_ADDRESS_HEADER: Final = "X-Flowork-User-Address"
USER_ID_HEADER: Final = "X-Flowork-User-ID"
ENGINE_ID_HEADER: Final = "X-Flowork-Engine-ID"
#: A share link's token, for another user's preset.
SHARE_TOKEN_HEADER: Final = "X-Share-Token"


class ShareGrants(Protocol):
    """Checks a share link on every use (in-process: ``ShareLinkService``; a separate
    engine asks the gateway's public resolve route)."""

    async def authorize(
        self, token: str, owner: str | None, preset_name: str, action: PresetAction
    ) -> ShareGrant: ...


@dataclass(frozen=True, slots=True)
class EngineApiContext:
    presets: PresetService
    variables: VariableService
    dashboard: DashboardService
    share_grants: ShareGrants
    registry: NodeRegistry
    #: The X-API-Key the gateway must present (for a separate engine:
    #: ``engine_api_key(GATEWAY_SECRET_TOKEN, engine_id)``).
    secret: str
    news_file: Path | None = None


@dataclass(frozen=True, slots=True)
class EngineCaller:
    """The user the gateway calls for."""

    address: str
    user_id: str | None
    share_token: str | None


def context_of(request: Request) -> EngineApiContext:
    context: EngineApiContext = request.app.state.engine_api
    return context


def caller_of(request: Request) -> EngineCaller:
    """FastAPI dependency: the user the gateway vouches for (401 without the secret or a
    valid user address)."""
    context = context_of(request)
    check = check_shared_secret(context.secret, request.headers.get("x-api-key"))
    if check is not SecretCheck.OK:
        raise ApiProblem(401, "This engine answers its gateway only (X-API-Key)")
    try:
        address = normalize_address(request.headers.get(USER_ADDRESS_HEADER.lower()))
    except InvalidSignature:
        raise ApiProblem(401, f"Missing or malformed {USER_ADDRESS_HEADER}") from None
    return EngineCaller(
        address=address,
        user_id=request.headers.get(USER_ID_HEADER.lower()),
        share_token=request.headers.get(SHARE_TOKEN_HEADER.lower()),
    )
