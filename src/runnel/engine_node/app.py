"""The engine-only process (``runnel engine``): its own platform, its HTTP surface, its
gateway link.

``EngineNode.open`` opens the platform (its own SQLite store in the engine's data dir,
worker included) and builds the Core Engine over it; ``app`` serves on the engine's bind:

- the engine REST API (``runnel.api.flowork.engine_api``), for the gateway only: it
  presents ``engine_api_key(GATEWAY_SECRET_TOKEN, engine_id)`` in ``X-API-Key`` (without
  the secret every request answers 401); share links are checked at the gateway;
- the Core Engine WebSocket at ``/`` and ``/engine/ws`` (``?engineId=``).

``link`` (``runnel.engine_node.gateway_link``) connects to the gateway once the server
listens. The authorization list the gateway sends is kept in ``auth-list.json`` in the
data dir, so that an engine started while its gateway is away still knows its users.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from runnel.api.flowork.engine_api import EngineApiContext, create_engine_api
from runnel.api.flowork.engine_socket import engine_socket_routes
from runnel.auth.shared_secret import engine_api_key
from runnel.engine_node.gateway_link import Backoff, GatewayLink, LinkHooks
from runnel.engine_node.share_grants import GatewayShareGrants
from runnel.platform import Platform
from runnel.services.core_engine import CoreEngine, ListAuthority, OutgoingListener
from runnel.services.errors import ServiceError
from runnel.services.kill_switch import check_component_id
from runnel.settings import EngineSettings, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["AUTH_LIST_FILE", "EngineNode"]

log = logging.getLogger(__name__)

#: The last authorization list heard from the gateway, in the data dir.
AUTH_LIST_FILE: Final = "auth-list.json"
_HTTP_TIMEOUT: Final = httpx.Timeout(15.0, connect=5.0)


class EngineNode:
    """One engine process's parts. ``open`` builds them; ``close`` stops them."""

    def __init__(
        self,
        settings: EngineSettings,
        platform: Platform,
        core: CoreEngine,
        authority: ListAuthority,
        http: httpx.AsyncClient,
        data_dir: Path,
    ) -> None:
        assert settings.engine_id is not None and settings.engine_token is not None
        assert settings.gateway_url is not None
        self.settings = settings
        self.engine_id = settings.engine_id
        self.platform = platform
        self.core = core
        self.authority = authority
        self.data_dir = data_dir
        self._http = http
        self.link: GatewayLink | None = None

    @classmethod
    async def open(cls, settings: EngineSettings, base: Settings) -> EngineNode:
        """Open the engine's platform (its own store, its worker) and start it."""
        assert settings.engine_id is not None and settings.gateway_url is not None
        data_dir = settings.effective_data_dir()
        # The engine's own SQLite store, whatever RUNNEL_DATABASE_URL says (that is the
        # gateway's), and the worker: the engine runs its jobs.
        config = dataclasses.replace(
            base.platform_config(worker=True), data_dir=data_dir, database_url=None
        )
        platform = await Platform.open(config)
        try:
            await platform.start()
            http = httpx.AsyncClient(timeout=_HTTP_TIMEOUT)
            authority = ListAuthority()
            _load_auth_list(data_dir, authority)
            # The platform builds it as it builds the embedded engine of ``runnel serve``
            # (browse roots, jobs); only who may use it and the share links differ.
            core = platform.new_core_engine(
                settings.engine_id,
                authority,
                share_grants=GatewayShareGrants(settings.gateway_url, http),
            )
            await core.start()
        except BaseException:
            await platform.stop()
            raise
        return cls(settings, platform, core, authority, http, data_dir)

    def app(self) -> FastAPI:
        """The engine's HTTP surface: its REST API and the Core Engine socket."""
        secret = self.settings.gateway_secret_token
        flowork = self.platform.flowork
        app = create_engine_api(
            EngineApiContext(
                presets=flowork.presets,
                variables=flowork.variables,
                dashboard=flowork.dashboard,
                share_grants=GatewayShareGrants(self.gateway_url, self._http),
                registry=self.platform.registry,
                # No secret: an empty one closes the API (every request answers 401).
                secret=engine_api_key(secret, self.engine_id) if secret else "",
            )
        )
        # WebSocket routes only: they never shadow the API's HTTP routes.
        app.router.routes.extend(engine_socket_routes(lambda: self.core))
        return app

    @property
    def gateway_url(self) -> str:
        assert self.settings.gateway_url is not None
        return self.settings.gateway_url

    def make_link(self, internal_api_url: str, say: Callable[[str], None]) -> GatewayLink:
        """The gateway link, telling the gateway ``internal_api_url``."""
        assert self.settings.engine_token is not None
        self.link = GatewayLink(
            gateway_url=self.gateway_url,
            engine_id=self.engine_id,
            token=self.settings.engine_token,
            internal_api_url=internal_api_url,
            engine=self.core,
            hooks=LinkHooks(
                is_authorized=self.authority.is_authorized,
                apply_auth_list=self.apply_auth_list,
                apply_kill_switch=self.apply_kill_switch,
                vitals=self.vitals,
            ),
            backoff=Backoff(
                maximum=self.settings.reconnect_max_seconds,
                refused=self.settings.refused_retry_seconds,
            ),
            http=self._http,
            say=say,
        )
        return self.link

    def listen(self, listener: OutgoingListener) -> Callable[[], None]:
        return self.core.listen(listener)

    async def apply_auth_list(self, addresses: list[str], owner: str | None) -> None:
        """Replace who may use the engine, and keep the list for the next start."""
        self.authority.replace(addresses, owner)
        _save_auth_list(self.data_dir, sorted(self.authority.addresses), owner)

    async def apply_kill_switch(self, components: list[str]) -> None:
        """Make the gateway's list this engine's kill switch: stored in the engine's own
        store, which the platform re-reads onto its executor (``KillSwitchService``)."""
        valid: list[str] = []
        for component in components:
            try:
                valid.append(check_component_id(component))
            except ServiceError:
                log.warning("ignored a malformed component id from the gateway: %r", component)
        await self.platform.flowork.kill_switch.replace(valid, by="gateway")

    async def vitals(self) -> Mapping[str, Any]:
        status = self.core.status_message()
        return {key: status[key] for key in ("isBusy", "cpuPercent", "memoryPercent")}

    async def close(self) -> None:
        """Stop the link, the engine, then the platform (running jobs finish or are
        checkpointed)."""
        if self.link is not None:
            self.link.stop()
        with contextlib.suppress(Exception):
            await self.core.stop()
        await self._http.aclose()
        await self.platform.stop()


def _load_auth_list(data_dir: Path, authority: ListAuthority) -> None:
    path = data_dir / AUTH_LIST_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as error:
        log.warning("ignored %s: %s", path, error)
        return
    if isinstance(saved, dict) and isinstance(saved.get("authorized_addresses"), list):
        owner = saved.get("owner_address")
        authority.replace(
            [a for a in saved["authorized_addresses"] if isinstance(a, str)],
            owner if isinstance(owner, str) else None,
        )


def _save_auth_list(data_dir: Path, addresses: list[str], owner: str | None) -> None:
    path = data_dir / AUTH_LIST_FILE
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(
            json.dumps({"authorized_addresses": addresses, "owner_address": owner})
        )
        os.replace(temporary, path)
    except OSError as error:  # the list in memory still holds
        log.warning("could not keep the authorization list in %s: %s", path, error)
