"""The gateway's Socket.IO server in front of the app, at ``/socket.io`` and
``/api/socket.io``."""

from __future__ import annotations

from typing import Final

import socketio
from starlette.types import ASGIApp

from runnel.api.flowork.realtime.gateway import RealtimeGateway

__all__ = ["SOCKETIO_PATHS", "socketio_layer"]

#: Where the Socket.IO server answers: the original GUI uses the first, a gateway behind
#: an ``/api`` reverse-proxy prefix the second.
SOCKETIO_PATHS: Final = ("socket.io", "api/socket.io")


def socketio_layer(app: ASGIApp, gateway: RealtimeGateway) -> ASGIApp:
    """``app`` wrapped in python-socketio's ``ASGIApp`` once per path; everything else
    (lifespan included) goes on to ``app``. A middleware factory for Starlette."""
    wrapped: ASGIApp = app
    for path in reversed(SOCKETIO_PATHS):
        wrapped = socketio.ASGIApp(gateway.server, other_asgi_app=wrapped, socketio_path=path)
    return wrapped
