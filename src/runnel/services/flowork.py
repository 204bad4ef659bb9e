"""Every Flowork use case of one process, built together (the platform holds one).

``bootstrap`` runs when the gateway starts: it links the owner's address (when configured)
and makes sure the embedded engine exists. ``start`` applies the kill-switch list and
re-reads it every ``KILL_SWITCH_REFRESH_SECONDS``, so that a change made by another process
(several API processes on one PostgreSQL database) reaches this one's executor too; on
PostgreSQL it also relays the engine events between the processes (a change made on one
reaches the others at once, the kill switch included).
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
from runnel.services.engine_access_cache import EngineAccessCache
from runnel.services.engine_event_relay import PostgresEngineEventRelay
from runnel.services.engine_events import EngineEvent, EngineEventHub, KillSwitchChanged
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
        self._store = store
        self._relay: PostgresEngineEventRelay | None = None
        #: Where the realtime layer listens for what connected engines must hear.
        self.events = EngineEventHub()
        self.identities = IdentityService(store, clock)
        self.access = EngineAccess(store)
        #: Who may use which engine, for the realtime deliveries: the first listener of
        #: ``events``, so that an answer is forgotten before anyone acts on the change.
        self.access_cache = EngineAccessCache(store, self.access)
        self.events.listen(self.access_cache.on_event)
        self.engines = EngineService(
            store, self.access, self.events, sealer, clock, access_cache=self.access_cache
        )
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
        """Apply the kill switch now and keep it fresh; on PostgreSQL, join this
        process's engine events to the other processes' (``PostgresEngineEventRelay``)."""
        await self.kill_switch.refresh()
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_loop(), name="kill-switch")
        if self._relay is None and self._store.dialect == "postgresql":
            url = self._store.url.set(drivername="postgresql")
            self._relay = PostgresEngineEventRelay(
                url.render_as_string(hide_password=False),
                self.events,
                component_ids=self.kill_switch.component_ids,
                on_remote=self._remote_event,
                on_reconnect=self.access_cache.forget,
            )
            await self._relay.start()

    async def _remote_event(self, event: EngineEvent) -> None:
        """Another process's event, before this process's listeners hear it."""
        if isinstance(event, KillSwitchChanged):
            await self.kill_switch.refresh()  # this process's executor, at once

    async def stop(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            await relay.close()
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
