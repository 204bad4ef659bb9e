"""``CoreEngine``: one engine's use cases behind the Core Engine socket (seed 002).

``open_envelope`` checks a client message (signature, time window, replay, who may use the
engine); ``handle`` answers its payload. Job messages go to the ``JobService``
(``runnel.services.core_engine.jobs``); everything the engine says unasked (job events,
``engine_status_update`` every ``STATUS_INTERVAL_SECONDS``) goes to the listeners, each
with the audience that may see it. The transports (the WebSocket, the gateway's Socket.IO
relay) only carry messages: every rule is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from runnel.auth.signatures import MessageFormat, SignedMessage
from runnel.engine.registry import NodeRegistry
from runnel.services.core_engine.engine_settings import EngineSettingsService
from runnel.services.core_engine.files import BrowseRefused, FileBrowser
from runnel.services.core_engine.types import (
    EngineAuthority,
    EngineUser,
    EnvelopeRejected,
    Outgoing,
    OutgoingListener,
)
from runnel.services.core_engine.vitals import VitalsSampler
from runnel.services.errors import Forbidden, NotFound, ServiceError
from runnel.services.identities import IdentityService
from runnel.services.presets import PresetService, check_preset_name
from runnel.services.share_links import PresetAction, ShareGrant
from runnel.services.variables import Variable, VariableService

__all__ = [
    "COMPONENT_KINDS",
    "JOB_TYPES",
    "STATUS_INTERVAL_SECONDS",
    "CoreEngine",
    "CoreEngineParts",
    "JobFactory",
    "JobHandler",
    "ShareGrants",
]

log = logging.getLogger(__name__)

STATUS_INTERVAL_SECONDS: Final = 10.0
#: What ``JobService.handle`` answers.
JOB_TYPES: Final = frozenset(
    {
        "execute_workflow",
        "stop_workflow",
        "pause_workflow",
        "resume_workflow",
        "approval_response",
        "request_connection_history",
    }
)
COMPONENT_KINDS: Final = ("modules", "plugins", "triggers", "tools")


class ShareGrants(Protocol):
    """Checks a share link on every use (in-process: ``ShareLinkService``; a separate
    engine asks its gateway)."""

    async def authorize(
        self, token: str, owner: str | None, preset_name: str, action: PresetAction
    ) -> ShareGrant: ...


class JobHandler(Protocol):
    """What ``CoreEngine`` needs of ``runnel.services.core_engine.jobs.JobService``."""

    async def handle(
        self, user: EngineUser, payload: Mapping[str, Any], *, preset_owner: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


#: Builds the job service with the engine's ``emit`` (its events' way out).
JobFactory = Callable[[OutgoingListener], JobHandler]


@dataclass(frozen=True, slots=True)
class CoreEngineParts:
    """The services one engine uses (of its own process's platform)."""

    identities: IdentityService
    presets: PresetService
    variables: VariableService
    share_grants: ShareGrants
    settings: EngineSettingsService
    files: FileBrowser
    registry: NodeRegistry


class _Refused(Exception):
    """A payload answered with an error before anything changed."""


Handler = Callable[[EngineUser, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]


def _error(text: str) -> dict[str, Any]:
    return {"type": "error", "error": text}


def _required_str(payload: Mapping[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _Refused(f"Missing field: {field} (a non-empty string)")
    return value


def _optional_str(payload: Mapping[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Refused(f"Invalid field: {field} must be a string")
    return value


def _variable_json(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "value": variable.value,
        "values": list(variable.values),
        "mode": variable.mode.value,
        "is_secret": variable.is_secret,
        "is_enabled": variable.is_enabled,
    }


class CoreEngine:
    """One engine: the embedded one of ``runnel serve``, or a ``runnel engine`` process."""

    def __init__(
        self,
        engine_id: str,
        authority: EngineAuthority,
        parts: CoreEngineParts,
        *,
        jobs: JobFactory | None = None,
        status_interval: float = STATUS_INTERVAL_SECONDS,
        vitals: VitalsSampler | None = None,
    ) -> None:
        self.engine_id = engine_id
        self.authority = authority
        self.parts = parts
        self._listeners: list[OutgoingListener] = []
        self._status_interval = status_interval
        self._vitals = vitals or VitalsSampler()
        self._ticker: asyncio.Task[None] | None = None
        self._jobs: JobHandler | None = jobs(self.emit) if jobs is not None else None
        self._handlers: dict[str, Handler] = {
            "request_drives": self._drives,
            "request_directory_list": self._directory_list,
            "request_components_list": self._components_list,
            "request_presets_list": self._presets_list,
            "load_preset": self._load_preset,
            "save_preset": self._save_preset,
            "delete_preset": self._delete_preset,
            "request_settings": self._settings,
            "save_settings": self._save_settings,
            "request_variables": self._variables,
            "update_variable": self._update_variable,
            "delete_variable": self._delete_variable,
        }

    @property
    def jobs(self) -> JobHandler | None:
        return self._jobs

    # -- envelopes --------------------------------------------------------------------

    async def open_envelope(self, raw: object) -> tuple[EngineUser, Mapping[str, Any]]:
        """Parse and verify ``{"auth": {address, message, signature}, "payload"}`` (JSON
        text or an already parsed object) and check that its signer may use this engine.
        ``EnvelopeRejected`` says why not."""
        envelope = raw
        if isinstance(raw, str | bytes | bytearray):
            try:
                envelope = json.loads(raw)
            except ValueError:
                raise EnvelopeRejected("Invalid message: not JSON") from None
        if not isinstance(envelope, Mapping):
            raise EnvelopeRejected("Invalid message: expected an object {auth, payload}")
        auth = envelope.get("auth")
        if not isinstance(auth, Mapping):
            raise EnvelopeRejected("Missing auth: sign every message {auth, payload}")
        values = [auth.get(key) for key in ("address", "message", "signature")]
        if not all(isinstance(value, str) and value for value in values):
            raise EnvelopeRejected("Missing signature: auth needs address, message, signature")
        address, message, signature = (str(value) for value in values)
        try:
            verified = await self.parts.identities.verify(
                SignedMessage(address, message, signature), MessageFormat.ENGINE
            )
        except ServiceError as error:  # SignatureRejected: its text says what is wrong
            raise EnvelopeRejected(error.message) from None
        if not await self.authority.is_authorized(verified.address):
            raise EnvelopeRejected(f"User not authorized for engine {self.engine_id}")
        payload = envelope.get("payload")
        if not isinstance(payload, Mapping):
            raise EnvelopeRejected("Missing payload: expected an object {type, ...}")
        user = await self.parts.identities.user_for_address(verified.address, create=False)
        return EngineUser(verified.address, None if user is None else user.id), payload

    # -- answers ----------------------------------------------------------------------

    async def handle(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The answers to ``payload`` from ``user``, in order. Never raises: bad input
        answers ``[{"type": "error", "error": ...}]`` and changes nothing."""
        kind = payload.get("type") if isinstance(payload, Mapping) else None
        if not isinstance(kind, str) or not kind:
            return [_error("Missing field: type")]
        try:
            if kind in JOB_TYPES:
                if self._jobs is None:
                    return [_error(f"{kind} is not available on this engine yet")]
                return await self._jobs.handle(
                    user, payload, preset_owner=await self._run_preset_owner(user, payload)
                )
            handler = self._handlers.get(kind)
            if handler is None:
                return [_error(f"Unknown message type: {kind[:64]}")]
            return await handler(user, payload)
        except _Refused as refused:
            return [_error(str(refused))]
        except ServiceError as error:
            return [_error(error.message)]
        except Exception:
            log.exception("engine %s: %s failed", self.engine_id, kind)
            return [_error(f"{kind} failed: internal error")]

    # -- what goes out unasked --------------------------------------------------------

    def listen(self, listener: OutgoingListener) -> Callable[[], None]:
        """Receive job events and ``engine_status_update``; call the result to stop."""
        self._listeners.append(listener)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    def emit(self, outgoing: Outgoing) -> None:
        """Hand ``outgoing`` to every listener (a failing listener does not stop the
        others, nor the engine)."""
        for listener in tuple(self._listeners):
            try:
                listener(outgoing)
            except Exception:
                log.exception("engine %s: a listener failed", self.engine_id)

    async def may_see(self, address: str) -> bool:
        """Whether ``address`` may (still) use this engine: checked on every delivery."""
        return await self.authority.is_authorized(address)

    def status_message(self) -> dict[str, Any]:
        """``engine_status_update`` now: busy when a job runs, the machine's load."""
        vitals = self._vitals.sample()
        return {
            "type": "engine_status_update",
            "engineId": self.engine_id,
            "isBusy": self.is_busy(),
            "cpuPercent": vitals.cpu_percent,
            "memoryPercent": vitals.memory_percent,
        }

    def is_busy(self) -> bool:
        """A job is running (the job service's ``is_busy``, a property or a method)."""
        busy = getattr(self._jobs, "is_busy", False)
        if callable(busy):
            busy = busy()
        return bool(busy)

    async def start(self) -> None:
        if self._ticker is not None:
            return
        if self._jobs is not None:
            await self._jobs.start()
        self._ticker = asyncio.create_task(self._tick(), name=f"engine-status-{self.engine_id}")

    async def stop(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            if self._jobs is not None:
                await self._jobs.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._status_interval)
            try:
                message = await asyncio.to_thread(self.status_message)
            except Exception:  # /proc may be unreadable for a moment; try next time
                log.exception("engine %s: no vitals", self.engine_id)
                continue
            self.emit(Outgoing(message, None))

    # -- files ------------------------------------------------------------------------

    async def _drives(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"type": "drives_list_response", "drives": await self.parts.files.drives()}]

    async def _directory_list(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        path = _required_str(payload, "path")
        try:
            listing = await self.parts.files.listing(path)
        except BrowseRefused as refused:
            return [{"type": "directory_list_response", "path": path, "error": str(refused)}]
        answer: dict[str, Any] = {
            "type": "directory_list_response",
            "path": listing.path,
            "items": listing.items,
        }
        if listing.truncated:
            answer["truncated"] = True
        return [answer]

    # -- components -------------------------------------------------------------------

    async def _components_list(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        kind = payload.get("component_type", "modules")
        if kind not in COMPONENT_KINDS:
            raise _Refused(
                f"Invalid field: component_type must be one of {', '.join(COMPONENT_KINDS)}"
            )
        try:
            # Imported on use: another module of the same release, absent in old builds.
            components = importlib.import_module("runnel.services.components")
        except ImportError:
            raise _Refused("Components are not available on this engine") from None
        manifests = components.component_manifests(self.parts.registry, kind)
        return [
            {
                "type": "components_list_response",
                "component_type": kind,
                "components": list(manifests),
            }
        ]

    # -- presets ----------------------------------------------------------------------

    async def _preset_owner(
        self, user: EngineUser, payload: Mapping[str, Any], name: str, action: PresetAction
    ) -> str:
        """Whose preset ``name`` the payload means: the sender's own without a share
        link; with one (``share_token``), its owner's, if the link grants ``action``."""
        owner_id = _optional_str(payload, "owner_id")
        token = _optional_str(payload, "share_token")
        if token is None:
            mine = {user.address, (user.user_id or user.address).lower()}
            if owner_id is None or owner_id.strip().lower() in mine:
                return user.address
            raise Forbidden("Another user's preset needs a share link: send its share_token")
        grant = await self.parts.share_grants.authorize(token, owner_id, name, action)
        if grant.owner_address is None:
            raise NotFound("preset", name)
        return grant.owner_address

    async def _run_preset_owner(self, user: EngineUser, payload: Mapping[str, Any]) -> str | None:
        """For ``execute_workflow`` of a preset by name: whose preset it runs (another
        user's only through a share link that grants running it)."""
        name = payload.get("preset_name")
        if payload.get("type") != "execute_workflow" or not isinstance(name, str) or not name:
            return None
        if payload.get("workflow_data") is not None:
            return None
        return await self._preset_owner(user, payload, check_preset_name(name), PresetAction.RUN)

    async def _presets_answer(self, user: EngineUser) -> list[dict[str, Any]]:
        summaries = await self.parts.presets.list(user.address)
        return [{"type": "presets_list_response", "presets": [{"name": s.name} for s in summaries]}]

    async def _presets_list(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return await self._presets_answer(user)

    async def _load_preset(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        name = _required_str(payload, "name")
        owner = await self._preset_owner(user, payload, name, PresetAction.LOAD)
        preset = await self.parts.presets.load(owner, name)
        return [
            {
                "type": "load_preset_response",
                "name": preset.name,
                "workflow_data": preset.workflow_data,
            }
        ]

    async def _save_preset(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        name = _required_str(payload, "name")
        if "workflow_data" not in payload:
            raise _Refused("Missing field: workflow_data")
        _required_str(payload, "signature")
        owner = await self._preset_owner(user, payload, name, PresetAction.SAVE)
        await self.parts.presets.save(
            owner, name, payload["workflow_data"], payload["signature"], user.address
        )
        return await self._presets_answer(user)

    async def _delete_preset(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        await self.parts.presets.delete(user.address, _required_str(payload, "name"))
        return await self._presets_answer(user)

    # -- settings ---------------------------------------------------------------------

    async def _settings(self, user: EngineUser, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [
            {"type": "settings_response", "settings": await self.parts.settings.get(user.address)}
        ]

    async def _save_settings(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        if not isinstance(payload.get("settings"), Mapping):
            raise _Refused("Missing field: settings (an object)")
        saved = await self.parts.settings.save(user.address, payload["settings"])
        return [{"type": "settings_response", "settings": saved}]

    # -- variables --------------------------------------------------------------------

    async def _variables_answer(self, user: EngineUser) -> list[dict[str, Any]]:
        variables = await self.parts.variables.list(user.address)
        return [{"type": "variables_response", "variables": [_variable_json(v) for v in variables]}]

    async def _variables(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return await self._variables_answer(user)

    async def _update_variable(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        name = _required_str(payload, "name")
        if not isinstance(payload.get("data"), Mapping):
            raise _Refused(
                "Missing field: data (an object {value, values, mode, is_secret, is_enabled})"
            )
        await self.parts.variables.put(user.address, name, payload["data"])
        return await self._variables_answer(user)

    async def _delete_variable(
        self, user: EngineUser, payload: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        await self.parts.variables.delete(user.address, _required_str(payload, "name"))
        return await self._variables_answer(user)
