"""Who may do what with a Flowork engine: the one place this is decided.

An engine has one owner. The owner and the users it is shared with may use it (proxied
requests, its sockets); only the owner may rename, delete, re-token, authorize or share it.
An instance admin has no special rights over other people's engines.
"""

from __future__ import annotations

from enum import StrEnum

from runnel.services.errors import Forbidden, NotFound
from runnel.store import SqlStore
from runnel.store.engines import EngineRecord

__all__ = ["EngineAccess", "EngineRelation"]


class EngineRelation(StrEnum):
    OWNER = "owner"
    SHARED = "shared"
    NONE = "none"

    @property
    def may_use(self) -> bool:
        return self is not EngineRelation.NONE


class EngineAccess:
    """Answers from the store on every call, so a revoked share counts at once."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def relation(self, user_id: str, engine: EngineRecord) -> EngineRelation:
        """How ``user_id`` stands to ``engine``."""
        if engine.owner_id == user_id:
            return EngineRelation.OWNER
        if await self.store.is_engine_shared_with(engine.id, user_id):
            return EngineRelation.SHARED
        return EngineRelation.NONE

    async def require_use(self, user_id: str, engine_id: str) -> EngineRecord:
        """The engine, if ``user_id`` owns it or it is shared with them. ``NotFound`` for
        no such engine, ``Forbidden`` otherwise."""
        engine = await self._existing(engine_id)
        if not (await self.relation(user_id, engine)).may_use:
            raise Forbidden(
                f"You may not use engine {engine_id}: it is not yours or shared with you"
            )
        return engine

    async def require_owner(self, user_id: str, engine_id: str, action: str) -> EngineRecord:
        """The engine, if ``user_id`` owns it. ``NotFound`` for no such engine,
        ``Forbidden`` (naming ``action``) for anyone else."""
        engine = await self._existing(engine_id)
        if engine.owner_id != user_id:
            raise Forbidden(f"Only the owner of engine {engine_id} may {action}")
        return engine

    async def _existing(self, engine_id: str) -> EngineRecord:
        engine = await self.store.get_engine(engine_id)
        if engine is None:
            raise NotFound("engine", engine_id)
        return engine
