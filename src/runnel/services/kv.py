"""flow8's KV store: JSON values by key, in the scope of a user or of a group.

A flow's expressions read the scope of the flow (its group's if it has one, else its
owner's) as ``$kv.<key>``; a key with dots reads as nested names too, so the output of
flowlet ``fetch`` of flow ``Daily report`` (key ``Daily report.fetch``) is
``$kv["Daily report"].fetch``. Through the API a user reads and writes their own scope, or
a group's with ``groupId`` (members see it; editors and owners change it).
"""

from __future__ import annotations

import builtins
import math
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from runnel.model.workflow import Workflow
from runnel.services.access import Access, Action, Resource
from runnel.services.accounts import Principal
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore
from runnel.store.codec import dumps
from runnel.store.kv import KvRecord, KvWrite

__all__ = [
    "MAX_KEY_CHARS",
    "KvEntry",
    "KvService",
    "KvView",
    "workflow_scope",
]

MAX_KEY_CHARS: Final = 512
#: The longest TTL: ten years.
MAX_TTL_SECONDS: Final = 10 * 365 * 86400
#: Entries of one scope loaded for one execution's ``$kv``.
MAX_VIEW_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True)
class KvEntry:
    id: str
    key: str
    value: Any
    created_at: float
    updated_at: float
    expires_at: float | None
    #: The group whose scope it is in; None for the user's own scope.
    group_id: str | None
    owner: str | None


def workflow_scope(workflow: Workflow) -> str | None:
    """The KV scope a workflow reads and writes: its group's, else its owner's."""
    if workflow.group:
        return f"group:{workflow.group}"
    if workflow.owner:
        return f"user:{workflow.owner}"
    return None


def _scope_parts(scope: str) -> tuple[str | None, str | None]:
    """(owner, group id) of a scope."""
    kind, _, ident = scope.partition(":")
    return (ident, None) if kind == "user" else (None, ident)


def _entry(record: KvRecord) -> KvEntry:
    owner, group_id = _scope_parts(record.scope)
    return KvEntry(
        id=record.id,
        key=record.key,
        value=record.value,
        created_at=record.created_at,
        updated_at=record.updated_at,
        expires_at=record.expires_at,
        group_id=group_id,
        owner=owner,
    )


class KvView(Mapping[str, Any]):
    """A scope's entries as expressions read them: by whole key, or by the dotted
    segments of keys (``view["a"]["b"]`` finds key ``a.b``). ``set`` updates it as an
    execution writes its outputs, so later nodes of that run see them."""

    __slots__ = ("_entries", "_prefix")

    def __init__(self, entries: dict[str, Any], prefix: str = "") -> None:
        self._entries = entries
        self._prefix = prefix

    def set(self, key: str, value: Any) -> None:
        self._entries[key] = value

    def __getitem__(self, name: str) -> Any:
        if not isinstance(name, str):
            raise KeyError(name)
        full = self._prefix + name
        if full in self._entries:
            return self._entries[full]
        nested = full + "."
        if any(key.startswith(nested) for key in self._entries):
            return KvView(self._entries, nested)
        raise KeyError(name)

    def _names(self) -> list[str]:
        # Whole keys (below the prefix): ``dict(view)`` is the flat key -> value mapping.
        size = len(self._prefix)
        return [key[size:] for key in self._entries if key.startswith(self._prefix)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


class KvService:
    """KV entries through the API, and the reads and writes of running flows."""

    def __init__(
        self,
        store: SqlStore,
        access: Access,
        *,
        max_value_bytes: int = 256 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.access = access
        self.max_value_bytes = max_value_bytes
        self._clock = clock

    async def _scope(self, principal: Principal, group_id: str | None, action: Action) -> str:
        if group_id is None:
            return f"user:{principal.user_id}"
        await self.access.check(
            principal, Resource("group", group_id, owner=None, group_id=group_id), action
        )
        return f"group:{group_id}"

    def check_value(self, key: str, value: Any, ttl_seconds: Any = None) -> list[ProblemDetail]:
        """Every problem of a key, value and TTL."""
        problems: list[ProblemDetail] = []
        if not isinstance(key, str) or not key.strip():
            problems.append(ProblemDetail("must be a non-empty string", "key"))
        elif len(key) > MAX_KEY_CHARS:
            problems.append(ProblemDetail(f"must be at most {MAX_KEY_CHARS} characters", "key"))
        elif any(ord(ch) < 32 for ch in key):
            problems.append(ProblemDetail("must not contain control characters", "key"))
        size = _json_size(value)
        if size is None:
            problems.append(ProblemDetail("must be JSON", "value"))
        elif size > self.max_value_bytes:
            problems.append(
                ProblemDetail(
                    f"is {size} bytes as JSON; the limit is {self.max_value_bytes}", "value"
                )
            )
        if ttl_seconds is not None and (
            isinstance(ttl_seconds, bool)
            or not isinstance(ttl_seconds, int | float)
            or not math.isfinite(ttl_seconds)
            or not 0 < ttl_seconds <= MAX_TTL_SECONDS
        ):
            problems.append(
                ProblemDetail(
                    f"must be a number of seconds from 1 to {MAX_TTL_SECONDS}", "ttlSeconds"
                )
            )
        return problems

    async def put(
        self,
        principal: Principal,
        key: str,
        value: Any,
        *,
        ttl_seconds: float | None = None,
        group_id: str | None = None,
    ) -> KvEntry:
        """Insert or replace ``key`` (in the caller's scope, or ``group_id``'s)."""
        problems = self.check_value(key, value, ttl_seconds)
        if problems:
            raise InvalidInput("invalid KV entry: " + "; ".join(map(str, problems)), problems)
        scope = await self._scope(principal, group_id, Action.EDIT)
        now = self._clock()
        expires_at = None if ttl_seconds is None else now + float(ttl_seconds)
        record = await self.store.kv_put(_new_id(), scope, key, value, now, expires_at)
        return _entry(record)

    async def list(
        self,
        principal: Principal,
        *,
        prefix: str = "",
        group_id: str | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[builtins.list[KvEntry], int]:
        """Live entries whose key starts with ``prefix``, by key."""
        scope = await self._scope(principal, group_id, Action.VIEW)
        records, total = await self.store.kv_list(scope, prefix, self._clock(), limit, offset)
        return [_entry(record) for record in records], total

    async def delete(self, principal: Principal, entry_id: str) -> None:
        """Delete an entry by id (the caller's own, or a group's they may edit)."""
        record = await self.store.kv_get_by_id(entry_id, self._clock())
        if record is None:
            raise NotFound("kv entry", entry_id)
        owner, group_id = _scope_parts(record.scope)
        await self.access.check(
            principal, Resource("kv entry", entry_id, owner=owner, group_id=group_id), Action.EDIT
        )
        if not await self.store.kv_delete(entry_id):
            raise NotFound("kv entry", entry_id)

    # -- for running flows -------------------------------------------------------------

    async def view(self, scope: str) -> KvView:
        """The live entries of ``scope`` (at most ``MAX_VIEW_ENTRIES``) for ``$kv``."""
        records, _ = await self.store.kv_list(scope, "", self._clock(), MAX_VIEW_ENTRIES, 0)
        return KvView({record.key: record.value for record in records})

    async def write_outputs(self, scope: str, values: Mapping[str, Any]) -> builtins.list[str]:
        """Upsert flowlet outputs by key; returns the keys skipped for their size."""
        writes: builtins.list[KvWrite] = []
        skipped: builtins.list[str] = []
        for key, value in values.items():
            encoded = _encode(value)
            if encoded is None or len(encoded) > self.max_value_bytes:
                skipped.append(key)
                continue
            writes.append(KvWrite(_new_id(), scope, key[:MAX_KEY_CHARS], encoded, None))
        await self.store.kv_put_many(writes, self._clock())
        return skipped

    async def purge(self) -> int:
        """Delete expired entries."""
        return await self.store.purge_kv(self._clock())


def _encode(value: Any) -> str | None:
    try:
        return dumps(value)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return None


def _json_size(value: Any) -> int | None:
    encoded = _encode(value)
    return None if encoded is None else len(encoded.encode())


def _new_id() -> str:
    return secrets.token_hex(12)
