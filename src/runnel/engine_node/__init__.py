"""``runnel engine``: an engine-only process linked to a Flowork gateway.

``EngineNode`` (``app``) is the process's platform, Core Engine and HTTP surface;
``GatewayLink`` (``gateway_link``) its Socket.IO link to the gateway's ``/engine-socket``.
It sits between ``runnel.cli`` and ``runnel.api``: like ``runnel serve`` it composes the
API and the services over a ``Platform``.
"""

from __future__ import annotations

from runnel.engine_node.app import EngineNode
from runnel.engine_node.gateway_link import Backoff, GatewayLink, LinkHooks
from runnel.engine_node.share_grants import GatewayShareGrants

__all__ = ["Backoff", "EngineNode", "GatewayLink", "GatewayShareGrants", "LinkHooks"]
