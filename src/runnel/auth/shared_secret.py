"""The Flowork gateway secret (``GATEWAY_SECRET_TOKEN``): the ``X-API-Key`` that engines
and internal services present to the gateway, and the gateway to engines.

One rule: without a configured secret the routes it guards are closed, never open.

The gateway never sends the secret itself to an engine: an engine's ``internal_api_url`` is
whatever that engine reported, and any user may register an engine. It presents
``engine_api_key(secret, engine_id)`` instead, which an engine that holds the secret can
check, and which is worth nothing for any other engine or route.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

__all__ = ["SecretCheck", "check_shared_secret", "engine_api_key"]


class SecretCheck(StrEnum):
    OK = "ok"
    #: No secret is configured: nobody gets in.
    CLOSED = "closed"
    MISSING = "missing"
    WRONG = "wrong"


def check_shared_secret(configured: str | None, presented: str | None) -> SecretCheck:
    """Compare ``presented`` with ``configured`` in constant time."""
    if configured is None or not configured.strip():
        return SecretCheck.CLOSED
    if not presented:
        return SecretCheck.MISSING
    if not hmac.compare_digest(presented.strip().encode(), configured.strip().encode()):
        return SecretCheck.WRONG
    return SecretCheck.OK


def engine_api_key(secret: str, engine_id: str) -> str:
    """The ``X-API-Key`` the gateway presents to engine ``engine_id``: the hex
    HMAC-SHA256 of the engine id under the gateway secret."""
    message = f"runnel-engine-api:{engine_id}".encode()
    return hmac.new(secret.strip().encode(), message, hashlib.sha256).hexdigest()
