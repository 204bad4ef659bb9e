"""Every Flowork use case of one process, built together (the platform holds one).

``bootstrap`` runs when the gateway starts: it links the owner's address (when configured)
and makes sure the embedded engine exists. ``start`` applies the kill-switch list and
re-reads it every ``KILL_SWITCH_REFRESH_SECONDS``, so that a change made by another process
(several API processes on one PostgreSQL database) reaches this one's executor too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from runnel.auth.sealing import Sealer
from runnel.auth.secret import PURPOSE_SECRETS, derive_key
from runnel.engine.registry import NodeRegistry
from runnel.engine.services import NodeServices
from runnel.services.dashboard import DashboardService
from runnel.services.engine_access import EngineAccess
from runnel.services.engine_events import EngineEventHub
from runnel.services.engine_sharing import EngineSharingService
from runnel.services.engines import EngineInfo, EngineService
from runnel.services.errors import ServiceError
from runnel.services.identities import IdentityService
from runnel.services.kill_switch import KillSwitchService
from runnel.services.presets import PresetService
from runnel.services.share_links import ShareLinkService
from runnel.services.user_state import UserStateService
from runnel.services.variables import VariableService
from runnel.store import SqlStore

__all__ = ["KILL_SWITCH_REFRESH_SECONDS", "FloworkServices"]

log = logging.getLogger(__name__)

KILL_SWITCH_REFRESH_SECONDS: Final = 5.0


class FloworkServices:
    """The gateway's and the embedded engine's services over one store."""

    def __init__(
        self,
        store: SqlStore,
        registry: NodeRegistry,
        node_services: NodeServices,
        instance_key: bytes,
        *,
        static_disabled: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        sealer = Sealer(derive_key(instance_key, PURPOSE_SECRETS))
        #: Where the realtime layer listens for what connected engines must hear.
        self.events = EngineEventHub()
        self.identities = IdentityService(store, clock)
        self.access = EngineAccess(store)
        self.engines = EngineService(store, self.access, self.events, sealer, clock)
        self.sharing = EngineSharingService(store, self.access, self.identities, self.events, clock)
        self.share_links = ShareLinkService(store, sealer, clock)
        self.user_state = UserStateService(store, clock)
        self.kill_switch = KillSwitchService(
            store, registry, node_services, self.events, static_disabled, clock
        )
        self.presets = PresetService(store, clock)
        self.variables = VariableService(store, sealer, clock)
        self.dashboard = DashboardService(store, clock)
        self.embedded_engine: EngineInfo | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def bootstrap(self, owner_id: str | None, owner_address: str | None = None) -> None:
        """Link ``owner_address`` to the owner (if given and free) and create the embedded
        engine, owned by the owner. Without an owner yet, nothing happens."""
        if owner_id is None:
            return
        if owner_address:
            try:
                await self.identities.link_address(owner_id, owner_address)
            except ServiceError as error:
                log.warning("the owner address %s was not linked: %s", owner_address, error)
        self.embedded_engine = await self.engines.ensure_embedded(owner_id)

    async def start(self) -> None:
        """Apply the kill switch now and keep it fresh."""
        await self.kill_switch.refresh()
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name="kill-switch")

    async def stop(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(KILL_SWITCH_REFRESH_SECONDS)
            try:
                await self.kill_switch.refresh()
            except Exception as error:  # the store may be briefly away; try again later
                log.warning("could not refresh the kill switch: %s", error)
