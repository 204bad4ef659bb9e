"""Flowork variables: ``{NAME: {value, values[], mode, is_secret, is_enabled}}`` of one
owner (an address), what ``{{vars.NAME}}`` reads.

Names are ``[A-Z0-9_]+``. ``mode`` says what a run gets: ``single`` the value, ``random``
one of ``values`` at random, ``sequential`` the next of ``values`` in turn (the turn is
kept in the store, so it is shared by every process). Secret variables are encrypted at
rest with the instance key and shown masked (``value: ""``, no ``values``).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from runnel.auth.sealing import SealBroken, Sealer
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.services.presets import owner_key
from runnel.store import SqlStore
from runnel.store.variables import VariableRecord

__all__ = ["Variable", "VariableMode", "VariableService", "check_variable_name"]

MAX_NAME_CHARS: Final = 64
MAX_VALUES: Final = 1000
#: The largest variable, as JSON.
MAX_VARIABLE_BYTES: Final = 64 * 1024
_NAME: Final = re.compile(r"[A-Z0-9_]+")
_CONTEXT: Final = "variable:{owner}:{name}"


class VariableMode(StrEnum):
    SINGLE = "single"
    RANDOM = "random"
    SEQUENTIAL = "sequential"


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable as shown: a secret one has ``value`` ``""`` and no ``values``."""

    name: str
    value: Any
    values: tuple[Any, ...]
    mode: VariableMode
    is_secret: bool
    is_enabled: bool
    updated_at: float


def check_variable_name(name: object) -> str:
    """The one rule for variable names: ``[A-Z0-9_]+``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise _invalid("name", f"must be 1 to {MAX_NAME_CHARS} of A-Z, 0-9 and _")
    return name


class VariableService:
    def __init__(
        self,
        store: SqlStore,
        sealer: Sealer,
        clock: Callable[[], float] = time.time,
        chooser: random.Random | None = None,
    ) -> None:
        self.store = store
        self._sealer = sealer
        self._clock = clock
        self._random = chooser or random.SystemRandom()

    async def list(self, owner: str) -> list[Variable]:
        """The variables of ``owner``, by name, secrets masked."""
        key = owner_key(owner)
        return [self._shown(record) for record in await self.store.list_variables(key)]

    async def put(self, owner: str, name: object, data: object) -> Variable:
        """Create or replace a variable from ``{value, values, mode, is_secret,
        is_enabled}``. A secret saved with ``value: ""`` and no ``values`` keeps its
        stored value (the GUI sends the masked form back)."""
        key, clean = owner_key(owner), check_variable_name(name)
        if not isinstance(data, Mapping):
            raise _invalid("data", "must be an object {value, values, mode, is_secret, is_enabled}")
        mode = _mode(data.get("mode", VariableMode.SINGLE.value))
        is_secret = _flag(data, "is_secret", False)
        is_enabled = _flag(data, "is_enabled", True)
        value = data.get("value", "")
        values = data.get("values", [])
        if not isinstance(values, list) or len(values) > MAX_VALUES:
            raise _invalid("values", f"must be an array of at most {MAX_VALUES} values")
        if is_secret and value == "" and not values:
            kept = await self.store.get_variable(key, clean)
            if kept is not None and kept.is_secret:
                stored = self._payload(kept)
                value, values = stored.get("value", ""), stored.get("values", [])
        if mode is not VariableMode.SINGLE and not values:
            raise _invalid("values", f"must not be empty for mode {mode.value}")
        payload = json.dumps({"value": value, "values": values}, separators=(",", ":"))
        if len(payload) > MAX_VARIABLE_BYTES:
            raise _invalid("value", f"must be at most {MAX_VARIABLE_BYTES} bytes of JSON")
        if is_secret:
            payload = self._sealer.seal_text(
                payload, context=_CONTEXT.format(owner=key, name=clean)
            )
        record = VariableRecord(
            owner=key,
            name=clean,
            mode=mode.value,
            is_secret=is_secret,
            is_enabled=is_enabled,
            payload=payload,
            updated_at=self._clock(),
        )
        await self.store.put_variable(record)
        return self._shown(record)

    async def delete(self, owner: str, name: object) -> None:
        key, clean = owner_key(owner), check_variable_name(name)
        if not await self.store.delete_variable(key, clean):
            raise NotFound("variable", clean)

    async def values_for_run(self, owner: str) -> dict[str, Any]:
        """What ``{{vars.NAME}}`` gives in a run of ``owner``'s workflow: every enabled
        variable by its mode (a sequential one advances its turn)."""
        key = owner_key(owner)
        resolved: dict[str, Any] = {}
        for record in await self.store.list_variables(key):
            if not record.is_enabled:
                continue
            stored = self._payload(record)
            values = stored.get("values") or []
            mode = VariableMode(record.mode)
            if mode is VariableMode.SINGLE or not values:
                resolved[record.name] = stored.get("value")
            elif mode is VariableMode.RANDOM:
                resolved[record.name] = self._random.choice(values)
            else:
                turn = await self.store.advance_variable_sequence(key, record.name)
                resolved[record.name] = values[(turn or 0) % len(values)]
        return resolved

    def _payload(self, record: VariableRecord) -> dict[str, Any]:
        text = record.payload
        if record.is_secret:
            try:
                text = self._sealer.open_text(
                    text, context=_CONTEXT.format(owner=record.owner, name=record.name)
                )
            except SealBroken:
                # Sealed under another instance key: the value is lost, not shown garbled.
                return {"value": None, "values": []}
        loaded = json.loads(text)
        return loaded if isinstance(loaded, dict) else {"value": loaded, "values": []}

    def _shown(self, record: VariableRecord) -> Variable:
        if record.is_secret:
            value: Any = ""
            values: tuple[Any, ...] = ()
        else:
            stored = self._payload(record)
            value, values = stored.get("value"), tuple(stored.get("values") or ())
        return Variable(
            name=record.name,
            value=value,
            values=values,
            mode=VariableMode(record.mode),
            is_secret=record.is_secret,
            is_enabled=record.is_enabled,
            updated_at=record.updated_at,
        )


def _mode(value: object) -> VariableMode:
    try:
        return VariableMode(str(value))
    except ValueError:
        modes = ", ".join(mode.value for mode in VariableMode)
        raise _invalid("mode", f"must be one of {modes}") from None


def _flag(data: Mapping[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if not isinstance(value, bool):
        raise _invalid(field, "must be true or false")
    return value


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid variable: {where} {problem}", [ProblemDetail(problem, where)])
