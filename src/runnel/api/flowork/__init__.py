"""The Flowork gateway (seeds 000 and 001): REST under ``/api/v1`` with crypto-signature,
engine-token and gateway-secret auth, engines and sharing, workflow share links, user
state, system routes, and the routes proxied to the caller's engine. Errors are
``{"error": "..."}``.
"""

from __future__ import annotations

from fastapi import FastAPI

from runnel.api.common.state import ApiState
from runnel.api.flowork import (
    engines,
    identity,
    proxy,
    share_links,
    sharing,
    system,
    user_state,
)
from runnel.api.flowork.engine_socket import engine_socket_routes
from runnel.api.flowork.errors import render_error
from runnel.api.flowork.schemas import (
    FloworkDisabledComponentAdd,
    FloworkEngineCreate,
    FloworkEngineRename,
    FloworkPresetSave,
    FloworkPresetUpdate,
    FloworkSelectForAuth,
    FloworkShareCreate,
    FloworkShareLinkCreate,
    FloworkShareLinkUpdate,
    FloworkVariableData,
)
from runnel.services.core_engine import CoreEngine

__all__ = [
    "DOCUMENTED_BODIES",
    "PREFIX",
    "include_catch_all",
    "include_routes",
    "render_error",
    "start",
]

PREFIX = "/api/v1"

#: Request bodies the routes read themselves and document by schema.
DOCUMENTED_BODIES = (
    FloworkEngineCreate,
    FloworkEngineRename,
    FloworkSelectForAuth,
    FloworkShareCreate,
    FloworkShareLinkCreate,
    FloworkShareLinkUpdate,
    FloworkDisabledComponentAdd,
    FloworkPresetSave,
    FloworkPresetUpdate,
    FloworkVariableData,
)


def include_routes(app: FastAPI) -> None:
    """Mount every gateway route but the catch-all proxy (``include_catch_all``), and the
    embedded engine's Core Engine socket (``/`` and ``/engine/ws``)."""
    for module in (identity, engines, sharing, share_links, user_state, system, proxy):
        app.include_router(module.router)
    state: ApiState = app.state.runnel
    app.router.routes.extend(engine_socket_routes(lambda: _embedded_engine(state)))


def _embedded_engine(state: ApiState) -> CoreEngine | None:
    platform = state.platform
    return None if platform is None else platform.core_engine


def include_catch_all(app: FastAPI) -> None:
    """Mount the proxy of every other ``/api/v1`` path: after every other route."""
    app.include_router(proxy.catch_all_router)


async def start(state: ApiState) -> None:
    """At the app's start: link the owner's address (``RUNNEL_OWNER_ADDRESS``) and make
    sure the embedded engine exists, owned by the owner."""
    platform = state.ready_platform
    owner = await platform.accounts.owner_principal()
    await platform.flowork.bootstrap(
        owner.user_id if owner is not None else None, state.settings.owner_address
    )
    # The embedded engine's Core Engine (its socket and the gateway's relay use it).
    await platform.start_embedded_engine()
