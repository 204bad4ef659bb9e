"""Flowork presets: named workflows of one owner (an address), versioned and hash-chained.

Saving appends a version ``{version, author_id, timestamp, previous_hash, workflow_data,
signature}``; ``previous_hash`` is the SHA-256 of the previous version's canonical JSON
(``version_hash``), so the versions form a chain. Loading checks the whole chain and
refuses a preset whose chain is broken (a version changed, removed or inserted behind the
store's back). Every version carries its author's signature over ``{"workflow_data": ...}``
(``runnel.auth.signatures.preset_signing_text``), checked before it is saved.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from runnel.auth.signatures import (
    InvalidSignature,
    normalize_address,
    preset_signing_text,
    verify_content_signature,
)
from runnel.services.errors import Conflict, InvalidInput, NotFound, ProblemDetail
from runnel.store import SqlStore
from runnel.store.errors import ConflictError
from runnel.store.presets import PresetHead, PresetSummary, PresetVersionRecord

__all__ = [
    "MAX_PRESET_NAME_CHARS",
    "Preset",
    "PresetService",
    "PresetSummary",
    "check_preset_name",
    "owner_key",
    "version_hash",
]

MAX_PRESET_NAME_CHARS: Final = 128
#: The largest workflow_data a preset version may hold, as JSON.
MAX_WORKFLOW_BYTES: Final = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Preset:
    """One version of a preset, with its workflow data."""

    owner: str
    name: str
    version: int
    author: str
    created_at: float
    hash: str
    workflow_data: Any
    previous_hash: str | None = None
    signature: str | None = None


def check_preset_name(name: object) -> str:
    """The one rule for preset names: 1 to 128 characters after stripping, no control
    characters and no ``/`` (a name is a path segment of the REST routes)."""
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "is required")
    clean = name.strip()
    if len(clean) > MAX_PRESET_NAME_CHARS:
        raise _invalid("name", f"must be at most {MAX_PRESET_NAME_CHARS} characters")
    if "/" in clean or any(ord(ch) < 32 or ord(ch) == 127 for ch in clean):
        raise _invalid("name", "must not hold '/' or control characters")
    return clean


def owner_key(address: str) -> str:
    """Presets and variables belong to an address, lower-cased; ``InvalidInput`` if it
    is not one."""
    try:
        return normalize_address(address)
    except InvalidSignature:
        raise _invalid("owner", "must be an address (0x and 40 hex characters)") from None


def version_hash(
    version: int,
    author: str,
    timestamp: float,
    previous_hash: str | None,
    workflow_data: Any,
    signature: str | None,
) -> str:
    """The SHA-256 (hex) of a version's canonical JSON: key-sorted, compact."""
    document = {
        "version": version,
        "author_id": author,
        "timestamp": timestamp,
        "previous_hash": previous_hash,
        "workflow_data": workflow_data,
        "signature": signature,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PresetService:
    def __init__(self, store: SqlStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def list(self, owner: str) -> list[PresetSummary]:
        """The presets of ``owner``, by name."""
        return await self.store.list_presets(owner_key(owner))

    async def exists(self, owner: str, name: str) -> bool:
        return await self.store.preset_exists(owner_key(owner), check_preset_name(name))

    async def load(self, owner: str, name: str) -> Preset:
        """The latest version, after checking the whole chain. ``NotFound``; ``Conflict``
        when the chain is broken."""
        key, clean = owner_key(owner), check_preset_name(name)
        versions = await self.store.preset_versions(key, clean)
        if not versions:
            raise NotFound("preset", clean)
        previous: str | None = None
        for number, record in enumerate(versions, start=1):
            data = json.loads(record.workflow_data)
            recomputed = version_hash(
                record.version,
                record.author,
                record.created_at,
                record.previous_hash,
                data,
                record.signature,
            )
            if (
                record.version != number
                or record.previous_hash != previous
                or recomputed != record.hash
            ):
                raise Conflict(
                    f"Preset {clean} is corrupt: its history breaks at version {record.version};"
                    " it will not be loaded"
                )
            previous = record.hash
        return _preset(versions[-1], data)

    async def save(
        self,
        owner: str,
        name: object,
        workflow_data: object,
        signature: object,
        author: str,
    ) -> Preset:
        """Append a version of ``owner``'s preset, saved by ``author`` (the owner, or a
        share link's holder), whose ``signature`` over the workflow data is checked."""
        key, clean, author_key = owner_key(owner), check_preset_name(name), owner_key(author)
        data = _check_workflow_data(workflow_data)
        if not isinstance(signature, str) or not signature.strip():
            raise _invalid("signature", "is required: the author's signature of the workflow")
        try:
            verify_content_signature(preset_signing_text(data), signature, author_key)
        except InvalidSignature as error:
            raise _invalid("signature", error.message) from None
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        now = self._clock()

        def make(head: PresetHead | None) -> PresetVersionRecord:
            version = 1 if head is None else head.version + 1
            previous = None if head is None else head.hash
            return PresetVersionRecord(
                owner=key,
                name=clean,
                version=version,
                author=author_key,
                created_at=now,
                hash=version_hash(version, author_key, now, previous, data, signature),
                workflow_data=text,
                previous_hash=previous,
                signature=signature,
            )

        try:
            record = await self.store.append_preset_version(key, clean, make)
        except ConflictError:
            raise Conflict(
                f"Preset {clean} was saved by someone else meanwhile; save again"
            ) from None
        return _preset(record, data)

    async def delete(self, owner: str, name: str) -> None:
        """Delete a preset with its history."""
        clean = check_preset_name(name)
        if not await self.store.delete_preset(owner_key(owner), clean):
            raise NotFound("preset", clean)


def _preset(record: PresetVersionRecord, data: Any) -> Preset:
    return Preset(
        owner=record.owner,
        name=record.name,
        version=record.version,
        author=record.author,
        created_at=record.created_at,
        hash=record.hash,
        workflow_data=data,
        previous_hash=record.previous_hash,
        signature=record.signature,
    )


def _check_workflow_data(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("workflow_data", "must be an object {nodes, connections, ...}")
    for field in ("nodes", "connections"):
        if field in value and not isinstance(value[field], list):
            raise _invalid(f"workflow_data.{field}", "must be an array")
    try:
        size = len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except ValueError:
        raise _invalid("workflow_data", "must be plain JSON (no NaN or infinity)") from None
    if size > MAX_WORKFLOW_BYTES:
        raise _invalid("workflow_data", f"must be at most {MAX_WORKFLOW_BYTES} bytes of JSON")
    return value


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid preset: {where} {problem}", [ProblemDetail(problem, where)])
