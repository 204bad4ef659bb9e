"""The Flowork gateway secret (``GATEWAY_SECRET_TOKEN``): the ``X-API-Key`` that engines
and internal services present to the gateway, and the gateway to engines.

One rule: without a configured secret the routes it guards are closed, never open.
"""

from __future__ import annotations

import hmac
from enum import StrEnum

__all__ = ["SecretCheck", "check_shared_secret"]


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
