"""Pydantic schemas of the Flowork gateway, for OpenAPI: the request bodies (which the
routes read with ``runnel.api.common.body`` and the services validate, so every problem is
a 400 naming the field) and the shapes of the answers. Every name starts with ``Flowork``
so that it never clashes with another dialect's schema in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FloworkAuthInfo",
    "FloworkClaimedToken",
    "FloworkDashboard",
    "FloworkDisabledComponent",
    "FloworkDisabledComponentAdd",
    "FloworkEngine",
    "FloworkEngineCreate",
    "FloworkEngineCreated",
    "FloworkEngineRename",
    "FloworkEngineShare",
    "FloworkError",
    "FloworkHealth",
    "FloworkMessage",
    "FloworkPreset",
    "FloworkPresetName",
    "FloworkPresetSave",
    "FloworkPresetUpdate",
    "FloworkProfile",
    "FloworkSelectForAuth",
    "FloworkShareCreate",
    "FloworkShareCreated",
    "FloworkShareLink",
    "FloworkShareLinkCreate",
    "FloworkShareLinkUpdate",
    "FloworkShareResolved",
    "FloworkSharedEngine",
    "FloworkTokenReset",
    "FloworkUserRef",
    "FloworkVariable",
    "FloworkVariableData",
]

PermissionLevel = Literal["view", "view-run", "view-edit-run"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class FloworkError(BaseModel):
    """Every error of ``/api/v1``: ``{"error": "..."}`` (a 400 may add ``problems``)."""

    error: str
    problems: list[dict[str, Any]] | None = None


class FloworkMessage(_Doc):
    message: str


class FloworkHealth(_Doc):
    status: Literal["ok"]
    service: Literal["gateway"]
    version: str


class FloworkProfile(_Doc):
    id: str
    username: str | None
    email: str | None
    address: str | None
    tier: str
    permissions: list[str]


class FloworkEngineCreate(BaseModel):
    name: str = Field(description="1 to 64 letters, digits, spaces and . , ' ( ) # @ + - _")


class FloworkEngineRename(FloworkEngineCreate):
    """``PUT /user/engines/<id>/update-name``: the same one field as creating an engine."""


class FloworkEngine(_Doc):
    id: str
    name: str
    status: Literal["online", "offline"]
    last_seen: str | None = Field(description="ISO 8601, UTC")
    embedded: bool = Field(description="runnel: the engine inside this server")


class FloworkEngineCreated(_Doc):
    id: str
    name: str
    status: Literal["online", "offline"]
    raw_token: str = Field(description="dev_engine_ + 32 hex: shown this once")


class FloworkTokenReset(_Doc):
    message: str
    token: str = Field(description="The new token, shown this once; the old one stopped working")
    engine_id: str


class FloworkUserRef(_Doc):
    user_id: str
    username: str | None
    email: str | None


class FloworkSharedEngine(_Doc):
    id: str
    name: str
    status: Literal["online", "offline"]
    owner: FloworkUserRef
    shared_at: str


class FloworkSelectForAuth(BaseModel):
    request_id: str = Field(description="The engine dashboard's request id")
    engine_id: str


class FloworkShareCreate(BaseModel):
    share_with_identifier: str = Field(
        description="A username, or an address (an address with no account gets one)"
    )


class FloworkEngineShare(_Doc):
    user_id: str
    username: str | None
    email: str | None
    public_address: str | None
    shared_at: str


class FloworkShareCreated(_Doc):
    message: str
    shared_with: FloworkEngineShare


class FloworkShareLinkCreate(BaseModel):
    permission_level: PermissionLevel
    link_name: str | None = None


class FloworkShareLinkUpdate(BaseModel):
    permission_level: PermissionLevel


class FloworkShareLink(_Doc):
    id: str
    share_id: str
    share_token: str = Field(description="192 random bits, URL-safe")
    permission_level: PermissionLevel
    link_name: str | None
    created_at: str


class FloworkShareResolved(_Doc):
    workflow_name: str
    preset_name: str
    owner: str = Field(description="The owner's address (their user id if they have none)")
    owner_id: str
    owner_username: str | None
    permission_level: PermissionLevel


class FloworkAuthInfo(_Doc):
    authorized_addresses: list[str] = Field(description="Lower-case: the owner and shared users")
    owner_address: str | None = Field(
        default=None, description="runnel addition: the owner's lower-case address (or null)"
    )


class FloworkClaimedToken(_Doc):
    status: Literal["success"]
    token: str
    engine_id: str


class FloworkDisabledComponentAdd(BaseModel):
    component_id: str
    reason: str | None = None


class FloworkDisabledComponent(_Doc):
    component_id: str
    reason: str | None
    disabled_by: str | None
    disabled_at: str


class FloworkPresetName(_Doc):
    name: str


class FloworkPresetSave(BaseModel):
    name: str
    workflow_data: dict[str, Any]
    signature: str = Field(
        description="The author's EIP-191 signature of the compact, key-sorted JSON of"
        ' {"workflow_data": ...}'
    )


class FloworkPresetUpdate(BaseModel):
    workflow_data: dict[str, Any]
    signature: str


class FloworkPreset(_Doc):
    name: str
    owner: str
    version: int
    author: str
    saved_at: str
    hash: str
    workflow_data: dict[str, Any]


class FloworkVariableData(BaseModel):
    value: Any = ""
    values: list[Any] = Field(default_factory=list)
    mode: Literal["single", "random", "sequential"] = "single"
    is_secret: bool = False
    is_enabled: bool = True


class FloworkVariable(_Doc):
    name: str
    value: Any
    values: list[Any]
    mode: Literal["single", "random", "sequential"]
    is_secret: bool
    is_enabled: bool


class FloworkDashboard(_Doc):
    today: dict[str, Any]
    this_week: dict[str, Any]
    running_now: int
    success_rate: float | None
    average_duration_ms: float | None
