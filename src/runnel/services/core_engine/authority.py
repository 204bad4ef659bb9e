"""Who may use one engine (``EngineAuthority`` implementations).

The embedded engine asks the gateway's store (``GatewayStoreAuthority``), through a cache
that an announced revoke clears at once, so a revoked share counts at once. A ``runnel
engine`` process keeps the list it fetched from the gateway's ``get-engine-auth-info``
(``ListAuthority``) and replaces it when told to refresh or when it reconnects.
"""

from __future__ import annotations

from collections.abc import Iterable

from runnel.auth.signatures import InvalidSignature, normalize_address
from runnel.services.core_engine.types import EngineAuthority
from runnel.services.engines import EngineService
from runnel.services.errors import NotFound

__all__ = ["EngineAuthority", "GatewayStoreAuthority", "ListAuthority", "StaticAuthority"]


def _normalized(address: object) -> str | None:
    try:
        return normalize_address(address)
    except InvalidSignature:
        return None


class GatewayStoreAuthority:
    """The owner and the users the engine is shared with, read from the store (through
    ``EngineService.cached_authorized_addresses``: remembered for at most a second, and
    forgotten at once when a share, a revoke, a token reset or a deletion is announced)."""

    def __init__(self, engines: EngineService, engine_id: str) -> None:
        self._engines = engines
        self.engine_id = engine_id

    async def is_authorized(self, address: str) -> bool:
        wanted = _normalized(address)
        if wanted is None:
            return False
        return wanted in await self._engines.cached_authorized_addresses(self.engine_id)

    async def owner_address(self) -> str | None:
        try:
            engine = await self._engines.get(self.engine_id)
        except NotFound:
            return None
        owner = await self._engines.store.get_user(engine.owner_id)
        return None if owner is None or not owner.address else owner.address.lower()


class ListAuthority:
    """A list of addresses held in memory; ``replace`` swaps it in one step."""

    def __init__(self, addresses: Iterable[str] = (), owner: str | None = None) -> None:
        self._addresses: frozenset[str] = frozenset()
        self._owner: str | None = None
        self.replace(addresses, owner)

    def replace(self, addresses: Iterable[str], owner: str | None = None) -> None:
        """The new list (malformed entries are dropped); the owner is always in it."""
        kept = {found for found in map(_normalized, addresses) if found is not None}
        owner_key = _normalized(owner) if owner is not None else None
        if owner_key is not None:
            kept.add(owner_key)
        # One assignment each, so a concurrent reader sees the old or the new list whole.
        self._addresses = frozenset(kept)
        self._owner = owner_key

    @property
    def addresses(self) -> frozenset[str]:
        return self._addresses

    async def is_authorized(self, address: str) -> bool:
        wanted = _normalized(address)
        return wanted is not None and wanted in self._addresses

    async def owner_address(self) -> str | None:
        return self._owner


#: A fixed list is a list nobody replaces.
StaticAuthority = ListAuthority
