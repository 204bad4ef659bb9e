"""Per-user engine settings (the original engine's ``settings.json``), validated.

Stored as JSON in the store's per-user state under ``STATE_KEY``; the user is the one
holding the address (on a ``runnel engine`` process's own store, a user is registered for
an address the first time it saves). Reading merges the stored values over ``DEFAULTS``,
so a setting added later gets its default.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.services.identities import IdentityService
from runnel.services.presets import PresetService, check_preset_name
from runnel.services.user_state import MAX_KEYS
from runnel.store import SqlStore

__all__ = [
    "DEFAULTS",
    "NOTIFICATION_POSITIONS",
    "STATE_KEY",
    "EngineSettingsService",
    "check_settings",
]

STATE_KEY: Final = "engine_settings"
NOTIFICATION_POSITIONS: Final = (
    "top_left",
    "top_center",
    "top_right",
    "bottom_left",
    "bottom_center",
    "bottom_right",
)
MIN_PORT: Final = 1024
MAX_PORT: Final = 65535
MAX_NOTIFICATION_SECONDS: Final = 600
_LANGUAGE: Final = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?")

DEFAULTS: Final[Mapping[str, Any]] = {
    "language": "en",
    "webhook_enabled": False,
    "webhook_port": 8000,
    "global_error_handler_enabled": False,
    "global_error_workflow_preset": "",
    "notifications_enabled": True,
    "notifications_duration_seconds": 5,
    "notifications_position": "bottom_right",
}


def _invalid(where: str, problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid settings: {where} {problem}", [ProblemDetail(problem, where)])


def _boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _invalid(key, "must be true or false")
    return value


def _integer(key: str, value: object, low: int, high: int) -> int:
    # bool is an int in Python; a JSON true is not a port.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(key, f"must be a whole number from {low} to {high}")
    return value


def _check_one(key: str, value: object) -> Any:
    if key in ("webhook_enabled", "global_error_handler_enabled", "notifications_enabled"):
        return _boolean(key, value)
    if key == "language":
        if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
            raise _invalid(key, "must be a language code such as en or pt-BR")
        return value
    if key == "webhook_port":
        return _integer(key, value, MIN_PORT, MAX_PORT)
    if key == "notifications_duration_seconds":
        return _integer(key, value, 1, MAX_NOTIFICATION_SECONDS)
    if key == "notifications_position":
        if value not in NOTIFICATION_POSITIONS:
            raise _invalid(key, f"must be one of {', '.join(NOTIFICATION_POSITIONS)}")
        return value
    if key == "global_error_workflow_preset":
        if value is None or value == "":
            return ""
        try:
            return check_preset_name(value)
        except InvalidInput:
            raise _invalid(key, "must be a preset name or empty") from None
    raise _invalid(key, f"is not a setting (known: {', '.join(sorted(DEFAULTS))})")


def check_settings(settings: object) -> dict[str, Any]:
    """The checked values of a (partial) settings object; ``InvalidInput`` naming every
    problem at once."""
    if not isinstance(settings, Mapping):
        raise _invalid("settings", "must be an object")
    checked: dict[str, Any] = {}
    problems: list[ProblemDetail] = []
    for key, value in settings.items():
        try:
            checked[str(key)] = _check_one(str(key), value)
        except InvalidInput as error:
            problems.extend(error.problems)
    if problems:
        raise InvalidInput(
            "Invalid settings: " + "; ".join(f"{p.where} {p.message}" for p in problems),
            problems,
        )
    return checked


class EngineSettingsService:
    """``get``/``save`` the settings of one address."""

    def __init__(
        self,
        store: SqlStore,
        identities: IdentityService,
        presets: PresetService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._identities = identities
        self._presets = presets
        self._clock = clock

    async def get(self, address: str) -> dict[str, Any]:
        """The settings of ``address``: the defaults with what they saved over them."""
        user = await self._identities.user_for_address(address, create=False)
        stored = {} if user is None else await self._load(user.id)
        return {**DEFAULTS, **stored}

    async def save(self, address: str, settings: object) -> dict[str, Any]:
        """Check and store ``settings`` (every key it has; the others keep their value).
        ``global_error_workflow_preset`` must name a preset of ``address``."""
        checked = check_settings(settings)
        preset = checked.get("global_error_workflow_preset")
        if preset and not await self._presets.exists(address, preset):
            raise _invalid("global_error_workflow_preset", f"names no preset of yours: {preset}")
        user = await self._identities.user_for_address(address, create=True)
        if user is None:  # create=True always gives one; keeps mypy and the reader sure
            raise NotFound("user", address)
        merged = {**DEFAULTS, **await self._load(user.id), **checked}
        text = json.dumps(merged, separators=(",", ":"))
        # One more than the state keys a user may make, so the settings always fit.
        await self._store.put_user_state(
            user.id, STATE_KEY, text, self._clock(), max_keys=MAX_KEYS + 1
        )
        return merged

    async def _load(self, user_id: str) -> dict[str, Any]:
        text = await self._store.get_user_state(user_id, STATE_KEY)
        if text is None:
            return {}
        try:
            loaded = json.loads(text)
        except ValueError:
            return {}
        if not isinstance(loaded, dict):
            return {}
        # Keep only what still checks: a setting renamed or narrowed later reads its default.
        kept: dict[str, Any] = {}
        for key, value in loaded.items():
            try:
                kept[key] = _check_one(key, value)
            except InvalidInput:
                continue
        return kept
