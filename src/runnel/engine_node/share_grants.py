"""Share links for a separate engine: it keeps none itself and asks the gateway's public
resolve route on every use, so a deleted or downgraded link stops granting at once."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from runnel.services.errors import Forbidden, NotFound
from runnel.services.share_links import PresetAction, ShareGrant, ShareLevel, check_grant

__all__ = ["GatewayShareGrants"]

log = logging.getLogger(__name__)


class GatewayShareGrants:
    """``ShareGrants`` over ``GET <gateway>/api/v1/workflow-shares/resolve/{token}``."""

    def __init__(self, gateway_url: str, http: httpx.AsyncClient) -> None:
        self._base = gateway_url.rstrip("/")
        self._http = http

    async def resolve(self, token: str) -> ShareGrant:
        """What ``token`` grants now; ``NotFound`` for an unknown link, ``Forbidden`` when
        the gateway cannot be asked (a link is never honoured unchecked)."""
        clean = token.strip()
        if not clean:
            raise NotFound("share link", "for this token")
        url = f"{self._base}/api/v1/workflow-shares/resolve/{quote(clean, safe='')}"
        try:
            answer = await self._http.get(url)
        except httpx.HTTPError as error:
            log.warning("could not resolve a share link at the gateway: %s", error)
            raise Forbidden("The gateway cannot check this share link now") from None
        if answer.status_code == 404:
            raise NotFound("share link", "for this token")
        if answer.status_code != 200:
            log.warning("the gateway answered %s to a share link resolve", answer.status_code)
            raise Forbidden("The gateway cannot check this share link now")
        return _grant(answer.json())

    async def authorize(
        self, token: str, owner: str | None, preset_name: str, action: PresetAction
    ) -> ShareGrant:
        """The same rule as ``ShareLinkService.authorize``, on the gateway's answer."""
        return check_grant(await self.resolve(token), owner, preset_name, action)


def _grant(body: Any) -> ShareGrant:
    if not isinstance(body, dict):
        raise Forbidden("The gateway's answer about this share link is malformed")
    owner = str(body.get("owner_id") or body.get("owner") or "")
    try:
        level = ShareLevel(str(body.get("permission_level")))
    except ValueError:
        raise Forbidden("The gateway's answer about this share link is malformed") from None
    name = body.get("preset_name") or body.get("workflow_name")
    if not owner or not isinstance(name, str):
        raise Forbidden("The gateway's answer about this share link is malformed")
    username = body.get("owner_username")
    return ShareGrant(
        link_id="",
        owner_id=owner,
        # The gateway shows the owner's address when they have one, else their user id.
        owner_address=owner.lower() if owner.lower().startswith("0x") else None,
        owner_username=username if isinstance(username, str) else None,
        preset_name=name,
        level=level,
    )
