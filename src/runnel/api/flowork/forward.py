"""Forwarding a gateway request to an engine's REST API.

The embedded engine's API runs in this process: requests reach it through an in-memory
ASGI transport, with no socket and no network. A separate engine process is reached over
HTTP at the ``internal_api_url`` it reported, with a key derived from the gateway secret for
that engine in ``X-API-Key`` (``runnel.auth.shared_secret.engine_api_key``: the URL is the
engine's to choose, so the secret itself never leaves the gateway).
Either way the engine is told who the caller is (``X-Flowork-User-Address``,
``X-Flowork-User-ID``) and relies on the gateway having checked that they may use it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final

import httpx
from starlette.requests import Request
from starlette.responses import Response

from runnel.api.common.problems import ApiProblem
from runnel.api.common.state import get_state
from runnel.api.flowork.engine_api import (
    ENGINE_ID_HEADER,
    SHARE_TOKEN_HEADER,
    USER_ADDRESS_HEADER,
    USER_ID_HEADER,
    EngineApiContext,
    create_engine_api,
)
from runnel.auth.shared_secret import engine_api_key
from runnel.platform import Platform
from runnel.services.engines import EngineInfo
from runnel.services.identities import FloworkUser
from runnel.settings import Settings

__all__ = ["EngineForwarder", "forwarder"]

log = logging.getLogger(__name__)

#: Request headers passed on to the engine as they came.
_PASSED_ON: Final = ("content-type", "accept", "accept-language", "x-request-id")
#: Response headers passed back.
_PASSED_BACK: Final = ("content-type", "cache-control", "retry-after")
_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)


class EngineForwarder:
    """One per app and platform: the embedded engine's API, and the way to every engine."""

    def __init__(self, platform: Platform, settings: Settings) -> None:
        self.platform = platform
        self._gateway_secret = settings.gateway_secret_token
        self._max_bytes = settings.max_body_bytes
        # The embedded engine trusts only this process: a secret nobody else ever sees.
        self._embedded_secret = secrets.token_urlsafe(32)
        flowork = platform.flowork
        self.embedded_app = create_engine_api(
            EngineApiContext(
                presets=flowork.presets,
                variables=flowork.variables,
                dashboard=flowork.dashboard,
                share_grants=flowork.share_links,
                registry=platform.registry,
                secret=self._embedded_secret,
                news_file=settings.news_file,
            )
        )
        # raise_app_exceptions=False: the engine's app answers its own errors.
        transport = httpx.ASGITransport(app=self.embedded_app, raise_app_exceptions=False)
        self._embedded = httpx.AsyncClient(transport=transport, base_url="http://embedded-engine")

    async def forward(
        self, request: Request, engine: EngineInfo | None, user: FloworkUser | None
    ) -> Response:
        """Send ``request`` on to ``engine`` (None: the embedded engine, for the public
        routes) for ``user``, and hand back its answer."""
        headers = {name: request.headers[name] for name in _PASSED_ON if name in request.headers}
        share_token = request.headers.get(SHARE_TOKEN_HEADER.lower())
        if share_token:
            headers[SHARE_TOKEN_HEADER] = share_token
        if user is not None:
            headers[USER_ADDRESS_HEADER] = user.address
            headers[USER_ID_HEADER] = user.id
        if engine is not None:
            headers[ENGINE_ID_HEADER] = engine.id
        path = request.url.path
        query = request.url.query
        body = await request.body()
        if engine is None or engine.embedded:
            headers["X-API-Key"] = self._embedded_secret
            target = path + (f"?{query}" if query else "")
            answer = await self._embedded.request(
                request.method, target, headers=headers, content=body
            )
            return _response(answer, answer.content)
        return await self._remote(request.method, engine, path, query, headers, body)

    async def _remote(
        self,
        method: str,
        engine: EngineInfo,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        if not engine.internal_api_url:
            raise ApiProblem(
                503, f"Engine {engine.id} is offline: it has not said where it answers"
            )
        if not self._gateway_secret:
            raise ApiProblem(
                503, "The gateway cannot reach separate engines: GATEWAY_SECRET_TOKEN is not set"
            )
        headers["X-API-Key"] = engine_api_key(self._gateway_secret, engine.id)
        url = engine.internal_api_url.rstrip("/") + path + (f"?{query}" if query else "")
        client = self.platform.http_client
        try:
            outgoing = client.build_request(
                method, url, headers=headers, content=body, timeout=_TIMEOUT
            )
            answer = await client.send(outgoing, stream=True)
            try:
                content = await _read_limited(answer, self._max_bytes)
            finally:
                await answer.aclose()
        except httpx.TimeoutException:
            raise ApiProblem(504, f"Engine {engine.id} did not answer in time") from None
        except httpx.HTTPError as error:
            log.warning("forwarding to engine %s failed: %s", engine.id, error)
            raise ApiProblem(502, f"Engine {engine.id} cannot be reached: {error}") from None
        return _response(answer, content)


async def _read_limited(answer: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ApiProblem(502, f"The engine's answer is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _response(answer: httpx.Response, content: bytes) -> Response:
    headers = {name: answer.headers[name] for name in _PASSED_BACK if name in answer.headers}
    return Response(content, status_code=answer.status_code, headers=headers)


def forwarder(request: Request) -> EngineForwarder:
    """The app's forwarder, made on first use for the app's current platform."""
    state = get_state(request)
    platform = state.ready_platform
    current: EngineForwarder | None = getattr(request.app.state, "flowork_forwarder", None)
    if current is None or current.platform is not platform:
        current = EngineForwarder(platform, state.settings)
        request.app.state.flowork_forwarder = current
    return current
