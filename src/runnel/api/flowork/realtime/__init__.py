"""The gateway's Socket.IO server (seed 000; docs/flowork-realtime.md): ``/gui-socket``
for the GUI, ``/engine-socket`` for engines, mounted in front of the app at ``/socket.io``
and ``/api/socket.io``.

``RealtimeGateway(state)`` is made with the app; ``socketio_layer`` is its middleware
factory (outermost); the app's lifespan calls ``start()`` once the platform is open and
``stop()`` before it closes.
"""

from __future__ import annotations

from runnel.api.flowork.realtime.asgi import SOCKETIO_PATHS, socketio_layer
from runnel.api.flowork.realtime.gateway import EmbeddedCore, RealtimeGateway
from runnel.api.flowork.realtime.wire import ENGINE_NAMESPACE, GUI_NAMESPACE

__all__ = [
    "ENGINE_NAMESPACE",
    "GUI_NAMESPACE",
    "SOCKETIO_PATHS",
    "EmbeddedCore",
    "RealtimeGateway",
    "socketio_layer",
]
