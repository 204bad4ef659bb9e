"""Sharing an engine with other users, by username or address.

Sharing with an address nobody has yet creates that account at once (it works the moment
that person first signs in). Every grant and revocation is announced to the engine
(``AuthListChanged``), so it fetches its authorization list again and the change takes
effect at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from runnel.services.engine_access import EngineAccess
from runnel.services.engine_events import AuthListChanged, EngineEvents
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail
from runnel.services.identities import IdentityService
from runnel.store import SqlStore
from runnel.store.engines import EngineShareRecord, UserRef
from runnel.store.errors import ConflictError

__all__ = ["EngineShare", "EngineSharingService"]

#: One user an engine is shared with (as the store keeps it).
EngineShare = EngineShareRecord


class EngineSharingService:
    def __init__(
        self,
        store: SqlStore,
        access: EngineAccess,
        identities: IdentityService,
        events: EngineEvents,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.access = access
        self.identities = identities
        self.events = events
        self._clock = clock

    async def list(self, user_id: str, engine_id: str) -> list[EngineShareRecord]:
        """Who the owner shared ``engine_id`` with."""
        await self.access.require_owner(user_id, engine_id, "see whom it is shared with")
        return await self.store.list_engine_shares(engine_id)

    async def share(self, user_id: str, engine_id: str, identifier: object) -> EngineShareRecord:
        """Share an engine of ``user_id`` with the user ``identifier`` names (a username, or
        an address: an unknown one gets an account). ``Conflict`` if already shared."""
        await self.access.require_owner(user_id, engine_id, "share it")
        if not isinstance(identifier, str):
            raise InvalidInput(
                "share_with_identifier is required: a username or an address",
                [ProblemDetail("must be a string", "share_with_identifier")],
            )
        target = await self.identities.find(identifier, create_addresses=True)
        if target.id == user_id:
            raise InvalidInput(
                "You cannot share an engine with yourself",
                [ProblemDetail("is you", "share_with_identifier")],
            )
        now = self._clock()
        try:
            added = await self.store.add_engine_share(engine_id, target.id, now)
        except ConflictError:
            # The engine or the user was deleted meanwhile.
            raise NotFound("engine", engine_id) from None
        if not added:
            raise Conflict(f"Engine {engine_id} is already shared with this user")
        await self.events.notify(AuthListChanged(engine_id))
        ref = UserRef(target.id, target.display_name, target.email, target.address)
        return EngineShareRecord(engine_id, ref, now)

    async def revoke(self, user_id: str, engine_id: str, shared_user_id: str) -> None:
        """Take ``shared_user_id``'s access to an engine of ``user_id`` away, at once."""
        await self.access.require_owner(user_id, engine_id, "revoke its shares")
        if not await self.store.remove_engine_share(engine_id, shared_user_id):
            raise NotFound("share of engine", f"{engine_id} with user {shared_user_id}")
        await self.events.notify(AuthListChanged(engine_id))
