"""The kill switch: components an operator disabled everywhere.

The list lives in the store. This process applies it to its executor at once
(``NodeServices.disabled_types``, which the executor checks before every node runs), every
other process when it next refreshes (``refresh``, run periodically by the platform), and
connected engines hear of it through ``KillSwitchChanged`` (``force_sync_kill_switch``).
Ids are node types or their aliases (Flowork module ids such as ``debug_popup_module``);
an alias disables the type it names.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Final

from runnel.engine.registry import NodeRegistry
from runnel.engine.services import NodeServices
from runnel.services.engine_events import EngineEvents, KillSwitchChanged
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore
from runnel.store.killswitch import DisabledComponent

__all__ = ["MAX_DISABLED", "DisabledComponent", "KillSwitchService", "check_component_id"]

MAX_DISABLED: Final = 1000
_COMPONENT: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def check_component_id(value: object) -> str:
    """The one rule for component ids: 1 to 128 of ``A-Z a-z 0-9 _ . : -``."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value.strip()):
        raise InvalidInput(
            f"Invalid component id {value!r}: expected 1 to 128 of A-Z a-z 0-9 _ . : -",
            [ProblemDetail("must be 1 to 128 of A-Z a-z 0-9 _ . : -", "component_id")],
        )
    return value.strip()


class KillSwitchService:
    """``static`` are types disabled by configuration, which the list cannot re-enable."""

    def __init__(
        self,
        store: SqlStore,
        registry: NodeRegistry,
        node_services: NodeServices,
        events: EngineEvents,
        static: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.node_services = node_services
        self.events = events
        self.static = static
        self._clock = clock

    async def entries(self) -> list[DisabledComponent]:
        return await self.store.list_disabled_components()

    async def component_ids(self) -> list[str]:
        """The list as engines fetch it: component ids, sorted."""
        return [component.component_id for component in await self.entries()]

    async def disable(
        self, component_id: object, reason: str | None = None, by: str | None = None
    ) -> DisabledComponent:
        clean = check_component_id(component_id)
        if len(await self.entries()) >= MAX_DISABLED:
            raise InvalidInput(f"At most {MAX_DISABLED} components can be disabled")
        component = DisabledComponent(clean, self._clock(), _reason(reason), by)
        await self.store.disable_component(component)
        await self._changed()
        return component

    async def enable(self, component_id: object) -> None:
        clean = check_component_id(component_id)
        if not await self.store.enable_component(clean):
            raise NotFound("disabled component", clean)
        await self._changed()

    async def replace(self, component_ids: Iterable[object], by: str | None = None) -> list[str]:
        """Make the list exactly ``component_ids``."""
        clean = sorted({check_component_id(item) for item in component_ids})
        if len(clean) > MAX_DISABLED:
            raise InvalidInput(f"At most {MAX_DISABLED} components can be disabled")
        now = self._clock()
        await self.store.replace_disabled_components(
            DisabledComponent(item, now, None, by) for item in clean
        )
        await self._changed()
        return clean

    async def refresh(self) -> frozenset[str]:
        """Apply the stored list to this process's executor; returns the node types it
        disables now."""
        ids = await self.component_ids()
        disabled = self.static | frozenset(self._type_of(item) for item in ids)
        # NodeServices is shared with the executor, which reads this field before every
        # node: the change holds from the next node on.
        self.node_services.disabled_types = disabled
        return disabled

    def _type_of(self, component_id: str) -> str:
        found = self.registry.find(component_id)
        return found.manifest.type if found is not None else component_id

    async def _changed(self) -> None:
        await self.refresh()
        await self.events.notify(KillSwitchChanged(tuple(await self.component_ids())))


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    clean = reason.strip()[:500]
    return clean or None
