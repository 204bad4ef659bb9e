"""The ASGI fast path of ``POST /webhooks/{path}``: the same route, without the router.

A webhook is the hottest request the server answers, and most of its CPU went to the layers
every request crosses before it reaches the route (FastAPI's own middlewares, the exception
middlewares, the router matching the path against every route, dependency solving). The app
(``runnel.api.app``) hands ``POST /webhooks/...`` straight to ``WebhookFastPath``: the app's
own HTTP middlewares (metrics, request id, CORS, body limit: the same classes, built from the
same list) around ``run_webhook``, the route's one implementation, and errors rendered by the
app's one rule (``ErrorFormats.render_exception``). Any other method or path, and a request
under a ``root_path``, goes through the whole app as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from runnel.api.common.state import ApiState
from runnel.api.flowengine.webhooks import run_webhook

__all__ = ["PREFIX", "WebhookFastPath", "takes"]

PREFIX: Final = "/webhooks/"
_PREFIX_LENGTH: Final = len(PREFIX)


def takes(scope: Scope) -> bool:
    """Whether the fast path answers this request: ``POST /webhooks/...`` over HTTP."""
    return (
        scope["type"] == "http"
        and scope["method"] == "POST"
        and scope["path"].startswith(PREFIX)
        and not scope.get("root_path")
    )


class _Endpoint:
    """The innermost app: the route, with the app's exception handling."""

    def __init__(self, state: ApiState, route: Any) -> None:
        self.state = state
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # What the router would have set: the metrics label the request with its template.
        scope["route"] = self.route
        path: str = scope["path"]
        try:
            response = await run_webhook(self.state, path[_PREFIX_LENGTH:], Request(scope, receive))
        except Exception as exc:
            response = self.state.formats.render_exception(exc, "POST", path)
        await response(scope, receive, send)


class WebhookFastPath:
    """``run_webhook`` wrapped in ``layers`` (the app's HTTP middlewares, outermost first).
    ``route``: the app's webhook route (its ``path`` is the metrics' route label)."""

    def __init__(self, state: ApiState, route: Any, layers: Sequence[Middleware]) -> None:
        app: ASGIApp = _Endpoint(state, route)
        for cls, args, kwargs in reversed(layers):
            app = cls(app, *args, **kwargs)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
