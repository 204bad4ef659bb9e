"""Refuse request bodies over a size limit with 413, also when they come without a length."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runnel.api.common.problems import ApiProblem, ErrorFormats

__all__ = ["BodyLimitMiddleware", "BodyTooLarge"]


class BodyTooLarge(ApiProblem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body too large: the limit is {limit} bytes")


class BodyLimitMiddleware:
    """Pure ASGI middleware. A ``Content-Length`` over the limit is answered at once; a
    body streamed without one (or longer than it said) is counted chunk by chunk and the
    app's read of it raises ``BodyTooLarge`` as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, formats: ErrorFormats) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.formats = formats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    response = self.formats.render(scope["path"], BodyTooLarge(limit))
                    await response(scope, receive, send)
                    return
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
