"""What every route of the app shares, reachable from any request or socket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from runnel.api.common.metrics import Metrics
from runnel.api.common.problems import ApiProblem, ErrorFormats
from runnel.auth.ratelimit import RateLimiter
from runnel.bus import EncodeCache
from runnel.settings import Settings

if TYPE_CHECKING:
    from runnel.platform import Platform
    from runnel.services.accounts import Principal

__all__ = ["ApiState", "get_state"]


@dataclass(slots=True)
class ApiState:
    """One per app. ``platform`` is None until the app's lifespan opened it."""

    settings: Settings
    formats: ErrorFormats
    metrics: Metrics = field(default_factory=Metrics)
    limiter: RateLimiter | None = None
    encode_cache: EncodeCache = field(default_factory=EncodeCache)
    platform: Platform | None = None
    #: Who a request is in ``--no-auth`` mode (the owner).
    anonymous: Principal | None = None

    @property
    def ready_platform(self) -> Platform:
        if self.platform is None:
            raise ApiProblem(503, "The server is starting or stopping")
        return self.platform


def get_state(connection: HTTPConnection) -> ApiState:
    """The ``ApiState`` of the app serving ``connection`` (a request or a socket)."""
    state: ApiState = connection.app.state.runnel
    return state
