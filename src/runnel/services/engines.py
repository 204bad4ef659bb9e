"""Flowork engines: registering them, their tokens, the claim flow, and which engine a
request goes to.

A token (``dev_engine_`` + 32 hex) is shown once; the store keeps its SHA-256. Resetting
it, or authorizing the engine from its dashboard (``select_for_auth``), replaces it at
once: the old token stops working on the next request, and a connection made with it is
told to end (``EngineTokenReset``). The dashboard's new token is parked, sealed, under its
request id for ``CLAIM_WINDOW_SECONDS`` and handed out once (``claim``).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from runnel.auth.engine_tokens import looks_like_engine_token, new_engine_token
from runnel.auth.sealing import SealBroken, Sealer
from runnel.auth.tokens import digests_match, token_digest
from runnel.services.engine_access import EngineAccess
from runnel.services.engine_access_cache import EngineAccessCache
from runnel.services.engine_events import (
    EngineDeleted,
    EngineEvents,
    EngineRenamed,
    EngineTokenReset,
)
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail, Unauthorized
from runnel.store import SqlStore
from runnel.store.engines import ClaimOutcome, EngineRecord, SharedEngineRecord, UserRef

__all__ = [
    "CLAIM_WINDOW_SECONDS",
    "ONLINE_SECONDS",
    "EngineInfo",
    "EngineLinkState",
    "EngineLinkView",
    "EngineService",
    "SharedEngine",
    "check_engine_name",
]

#: How long a token parked by ``select_for_auth`` waits for its claim.
CLAIM_WINDOW_SECONDS: Final = 300.0
#: An engine heard from this recently is online (it reports every 10 s), when no
#: connection of this process says otherwise (``EngineService.links``).
ONLINE_SECONDS: Final = 120.0
MAX_ENGINE_NAME_CHARS: Final = 64
#: Letters and digits of any script, spaces and a few separators; no control characters,
#: nothing that needs escaping in a GUI or a log line.
_ENGINE_NAME: Final = re.compile(r"[\w .,'()#@+\-]+")
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CLAIM_CONTEXT: Final = "engine-claim:{request_id}"


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """An engine as the services show it (no token digest)."""

    id: str
    name: str
    owner_id: str
    online: bool
    embedded: bool
    created_at: float
    updated_at: float
    internal_api_url: str | None = None
    last_seen_at: float | None = None

    @property
    def status(self) -> str:
        return "online" if self.online else "offline"


@dataclass(frozen=True, slots=True)
class EngineLinkState:
    """An engine's gateway connection as this process knows it."""

    #: It has a live connection to this process now.
    linked: bool
    #: When its last connection to this process ended (``EngineService`` clock).
    ended_at: float | None = None


class EngineLinkView(Protocol):
    """Who holds the engines' gateway connections in this process (the realtime
    gateway's ``/engine-socket``), so that the status is the live one."""

    @property
    def exclusive(self) -> bool:
        """No other process holds engine connections (one process on SQLite)."""
        ...

    def link_state(self, engine_id: str) -> EngineLinkState | None:
        """None: the engine never connected to this process."""
        ...


@dataclass(frozen=True, slots=True)
class SharedEngine:
    engine: EngineInfo
    owner: UserRef
    shared_at: float


def check_engine_name(name: object) -> str:
    """The one rule for engine names: the name stripped, 1 to 64 characters, letters,
    digits, spaces and ``.,'()#@+-_``. ``InvalidInput`` otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise _bad_name("is required")
    clean = name.strip()
    if len(clean) > MAX_ENGINE_NAME_CHARS:
        raise _bad_name(f"must be at most {MAX_ENGINE_NAME_CHARS} characters")
    if not _ENGINE_NAME.fullmatch(clean):
        raise _bad_name("may hold letters, digits, spaces and . , ' ( ) # @ + - _ only")
    return clean


def _not_found(message: str) -> NotFound:
    error = NotFound("engine", "")
    error.message = message
    error.args = (message,)
    return error


def _bad_name(problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid engine name: it {problem}", [ProblemDetail(problem, "name")])


class EngineService:
    """The engine registry. ``sealer`` keeps parked tokens encrypted in the store."""

    def __init__(
        self,
        store: SqlStore,
        access: EngineAccess,
        events: EngineEvents,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
        *,
        access_cache: EngineAccessCache | None = None,
    ) -> None:
        self.store = store
        self.access = access
        self.events = events
        #: Who may use an engine, remembered for the realtime deliveries (its owner
        #: forgets an engine's answers on the events that change them).
        self.access_cache = access_cache or EngineAccessCache(store, access)
        self._sealer = sealer
        self._clock = clock
        #: Set by whatever holds the engines' gateway connections in this process (None:
        #: the status comes from when an engine was last seen).
        self.links: EngineLinkView | None = None

    def now(self) -> float:
        """This service's clock (the times it stores)."""
        return self._clock()

    # -- the owner's engines ----------------------------------------------------------

    async def list_owned(self, user_id: str) -> list[EngineInfo]:
        """The engines ``user_id`` owns, oldest first."""
        return [self._info(e) for e in await self.store.list_engines_owned_by(user_id)]

    async def list_shared_with(self, user_id: str) -> list[SharedEngine]:
        """The engines shared with ``user_id``, by name."""
        return [self._shared(s) for s in await self.store.list_engines_shared_with(user_id)]

    async def get(self, engine_id: str) -> EngineInfo:
        engine = await self.store.get_engine(engine_id)
        if engine is None:
            raise NotFound("engine", engine_id)
        return self._info(engine)

    async def register(self, user_id: str, name: object) -> tuple[EngineInfo, str]:
        """A new engine of ``user_id`` and its token (shown this once)."""
        clean = check_engine_name(name)
        token = new_engine_token()
        now = self._clock()
        record = EngineRecord(
            id=str(uuid.uuid4()),
            owner_id=user_id,
            name=clean,
            token_sha256=token_digest(token),
            created_at=now,
            updated_at=now,
        )
        await self.store.create_engine(record)
        return self._info(record), token

    async def rename(self, user_id: str, engine_id: str, name: object) -> EngineInfo:
        clean = check_engine_name(name)
        await self.access.require_owner(user_id, engine_id, "rename it")
        if not await self.store.rename_engine(engine_id, clean, self._clock()):
            raise NotFound("engine", engine_id)
        await self.events.notify(EngineRenamed(engine_id, clean))
        return await self.get(engine_id)

    async def delete(self, user_id: str, engine_id: str) -> None:
        """Delete an engine with its shares; its connection is told to end."""
        engine = await self.access.require_owner(user_id, engine_id, "delete it")
        if engine.embedded:
            raise Conflict("The embedded engine runs inside this server and cannot be deleted")
        if not await self.store.delete_engine(engine_id):
            raise NotFound("engine", engine_id)
        await self.events.notify(EngineDeleted(engine_id))

    async def reset_token(self, user_id: str, engine_id: str) -> str:
        """A new token for an engine (shown once); the old one stops working at once."""
        await self.access.require_owner(user_id, engine_id, "reset its token")
        token = new_engine_token()
        if not await self.store.set_engine_token(engine_id, token_digest(token), self._clock()):
            raise NotFound("engine", engine_id)
        await self.events.notify(EngineTokenReset(engine_id))
        return token

    # -- the dashboard's claim flow ---------------------------------------------------

    async def select_for_auth(self, user_id: str, request_id: object, engine_id: object) -> None:
        """The owner authorizes an engine from its dashboard: its token is replaced and
        the new one parked under ``request_id`` for ``CLAIM_WINDOW_SECONDS``. ``Conflict``
        if another token waits under that request id."""
        problems = []
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            problems.append(ProblemDetail("must be 1 to 128 of A-Z a-z 0-9 . _ : -", "request_id"))
        if not isinstance(engine_id, str) or not engine_id:
            problems.append(ProblemDetail("is required", "engine_id"))
        if problems:
            raise InvalidInput(
                "request_id and engine_id are required: " + "; ".join(map(str, problems)),
                problems,
            )
        assert isinstance(request_id, str) and isinstance(engine_id, str)
        await self.access.require_owner(user_id, engine_id, "authorize it")
        token = new_engine_token()
        now = self._clock()
        sealed = self._sealer.seal_text(token, context=_CLAIM_CONTEXT.format(request_id=request_id))
        outcome = await self.store.rotate_engine_token_for_claim(
            engine_id, token_digest(token), now, request_id, sealed, now + CLAIM_WINDOW_SECONDS
        )
        if outcome is ClaimOutcome.REQUEST_TAKEN:
            raise Conflict(f"A token is already waiting for request {request_id}")
        if outcome is ClaimOutcome.NO_ENGINE:
            raise NotFound("engine", engine_id)
        await self.events.notify(EngineTokenReset(engine_id))

    async def claim(self, request_id: object) -> tuple[str, str]:
        """``(engine_id, token)`` parked under ``request_id``, handed out once.
        ``NotFound`` when there is none, it was claimed, or its window closed."""
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            raise InvalidInput(
                "req_id is required (1 to 128 of A-Z a-z 0-9 . _ : -)",
                [ProblemDetail("is required", "req_id")],
            )
        now = self._clock()
        await self.store.prune_engine_claims(now)
        parked = await self.store.take_engine_claim(request_id, now)
        if parked is None:
            raise _not_found(f"No token is waiting for request {request_id} (or it expired)")
        try:
            token = self._sealer.open_text(
                parked.token_sealed, context=_CLAIM_CONTEXT.format(request_id=request_id)
            )
        except SealBroken:
            # Sealed with another instance key (it was changed): the token is lost.
            raise _not_found(f"No token is waiting for request {request_id}") from None
        return parked.engine_id, token

    # -- engines authenticating -------------------------------------------------------

    async def authenticate(self, token: str | None) -> EngineInfo:
        """The engine whose token this is. ``Unauthorized`` for none, a malformed or an
        unknown (or replaced) token."""
        if not token:
            raise Unauthorized("Missing engine token: send the header X-Engine-Token")
        token = token.strip()
        if not looks_like_engine_token(token):
            raise Unauthorized("Invalid engine token")
        engine = await self.store.engine_by_token_digest(token_digest(token))
        # The lookup is by digest; comparing again in constant time costs nothing and
        # keeps the check independent of how the index matched.
        if engine is None or not digests_match(token, engine.token_sha256):
            raise Unauthorized("Invalid engine token")
        return self._info(engine)

    async def authorized_addresses(self, engine_id: str) -> list[str]:
        """The lower-case addresses that may use the engine: its owner's and those of the
        users it is shared with."""
        return await self.store.engine_authorized_addresses(engine_id)

    async def cached_authorized_addresses(self, engine_id: str) -> frozenset[str]:
        """``authorized_addresses``, remembered for a moment (``access_cache``): for the
        checks made on every delivery."""
        return await self.access_cache.authorized_addresses(engine_id)

    async def record_seen(self, engine_id: str, internal_api_url: str | None = None) -> None:
        """An engine reported in (and where it answers the gateway, when given)."""
        if not await self.store.record_engine_seen(engine_id, self._clock(), internal_api_url):
            raise NotFound("engine", engine_id)

    # -- routing requests -------------------------------------------------------------

    async def active_engine(self, user_id: str, requested: str | None) -> EngineInfo:
        """The engine a request of ``user_id`` goes to: ``requested`` if they may use it
        (``Forbidden`` otherwise), else their own (the embedded one first, then the one
        seen most recently, then the oldest). ``NotFound`` when they have none."""
        if requested:
            return self._info(await self.access.require_use(user_id, requested))
        owned = await self.store.list_engines_owned_by(user_id)
        if not owned:
            raise _not_found(
                "You have no engine: register one (POST /api/v1/user/engines) or name one"
                " shared with you in the X-Engine-Id header"
            )
        chosen = min(owned, key=lambda e: (not e.embedded, -(e.last_seen_at or 0.0), e.created_at))
        return self._info(chosen)

    # -- the embedded engine ----------------------------------------------------------

    async def ensure_embedded(self, owner_id: str, name: str = "This server") -> EngineInfo:
        """The engine that runs inside the gateway, created for ``owner_id`` on first use.
        Its token is never shown: nothing outside connects as it."""
        existing = await self.store.embedded_engine()
        if existing is not None:
            return self._info(existing)
        now = self._clock()
        record = EngineRecord(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            name=check_engine_name(name),
            token_sha256=token_digest(new_engine_token()),
            created_at=now,
            updated_at=now,
            embedded=True,
        )
        return self._info(await self.store.create_embedded_engine(record))

    # -- plumbing ---------------------------------------------------------------------

    def _online(self, engine: EngineRecord) -> bool:
        """The embedded engine always; a remote one while it is connected to this
        process's gateway socket, not once its connection here ended (unless another
        process saw it since), else when it was seen in the last ``ONLINE_SECONDS``
        (connected to another process: several API processes on PostgreSQL)."""
        if engine.embedded:
            return True
        seen = engine.last_seen_at
        links = self.links
        if links is not None:
            state = links.link_state(engine.id)
            if state is not None and state.linked:
                return True
            if links.exclusive:
                return False
            ended = state.ended_at if state is not None else None
            if ended is not None and (seen is None or seen <= ended):
                return False
        return seen is not None and self._clock() - seen < ONLINE_SECONDS

    def _info(self, engine: EngineRecord) -> EngineInfo:
        seen = engine.last_seen_at
        online = self._online(engine)
        return EngineInfo(
            id=engine.id,
            name=engine.name,
            owner_id=engine.owner_id,
            online=online,
            embedded=engine.embedded,
            created_at=engine.created_at,
            updated_at=engine.updated_at,
            internal_api_url=engine.internal_api_url,
            last_seen_at=seen,
        )

    def _shared(self, shared: SharedEngineRecord) -> SharedEngine:
        return SharedEngine(self._info(shared.engine), shared.owner, shared.shared_at)
