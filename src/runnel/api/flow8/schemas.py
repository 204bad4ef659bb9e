"""flow8 request bodies (pydantic, at the edge only). Unknown fields are refused, so a typo
(``needApproval``) is a clear 400 rather than a setting silently ignored; the read-only
fields of an answer (``id``, ``createdAt``...) are accepted back and ignored, so a client
may send what it read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiKeyBody",
    "ApproveBody",
    "ChannelBody",
    "ExecutionConfigBody",
    "FlowBody",
    "FlowletBody",
    "GroupBody",
    "KvBody",
    "LoginBody",
    "MemberBody",
    "NotifyBody",
    "RetryBody",
    "RunBody",
    "ScheduleBody",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryBody(_Body):
    maxRetries: int = Field(default=0, ge=0, le=100)
    initialDelayMs: int = Field(default=0, ge=0)
    maxDelayMs: int | None = Field(default=None, ge=0)
    backoffMultiplier: float = Field(default=2.0, ge=1.0, le=100.0)
    #: A fraction of each delay (0-1); ``true`` means 0.5.
    jitter: float | bool = 0.0


class FlowletBody(_Body):
    ref: str = Field(description="Names the step in expressions ($node.<ref>).")
    appId: str = Field(description="A node type id or alias (curl, set, delay, ...).")
    args: dict[str, Any] = Field(default_factory=dict)
    filters: Any = None
    timeout: int | None = Field(default=None, ge=0, description="Milliseconds.")
    retry: RetryBody | None = None
    onError: Literal["continue", "fail", "skip"] = "fail"
    deferAfterMs: int | None = Field(default=None, ge=0)
    needsApproval: bool = False
    skipOutputMapping: bool = False
    id: str | None = None
    #: POST /layers only: where to insert (default: at the end).
    position: int | None = Field(default=None, ge=0)


class NotifyBody(_Body):
    onFail: list[str] = Field(default_factory=list)
    onFinish: list[str] = Field(default_factory=list)


class ExecutionConfigBody(_Body):
    timeoutMs: int | None = Field(default=None, ge=1)
    maxParallel: int | None = Field(default=None, ge=1, le=1000)


class FlowBody(_Body):
    name: str
    description: str = ""
    category: str = "general"
    enabled: bool = True
    groupId: str | None = None
    #: PROTOCOLS.md writes ``group``; either works.
    group: str | None = None
    flowlets: list[FlowletBody] = Field(default_factory=list)
    notify: NotifyBody | None = None
    executionConfig: ExecutionConfigBody | None = None
    # read-only fields of an answer, ignored
    id: Any = None
    ownerId: Any = None
    version: Any = None
    createdAt: Any = None
    updatedAt: Any = None
    chain: Any = None


class RunBody(_Body):
    args: dict[str, Any] = Field(default_factory=dict)


class ApproveBody(_Body):
    ref: str = Field(description="The flowlet's ref (or layer id).")
    approved: bool = True
    comment: str | None = Field(default=None, max_length=10_000)


class MemberBody(_Body):
    userId: str | None = None
    email: str | None = None
    role: Literal["owner", "editor", "runner", "viewer"]
    # read-only
    displayName: Any = None
    addedAt: Any = None


class GroupBody(_Body):
    name: str
    description: str = ""
    members: list[MemberBody] | None = None
    id: Any = None
    createdAt: Any = None
    updatedAt: Any = None
    createdBy: Any = None
    myRole: Any = None


class KvBody(_Body):
    key: str
    value: Any = Field(description="Any JSON value.")
    ttlSeconds: float | None = Field(default=None, gt=0)
    groupId: str | None = None


class ChannelBody(_Body):
    name: str
    type: Literal["webhook", "slack", "email"]
    config: dict[str, Any] = Field(default_factory=dict)
    groupId: str | None = None
    id: Any = None
    ownerId: Any = None
    createdAt: Any = None
    updatedAt: Any = None


class ScheduleBody(_Body):
    flowId: str
    cron: str = Field(description="Five fields: minute hour day-of-month month day-of-week.")
    timezone: str = "UTC"
    args: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    catchup: Literal["none", "latest", "all"] = "latest"
    id: Any = None
    nextRunAt: Any = None
    lastRunAt: Any = None
    ownerId: Any = None
    createdAt: Any = None
    updatedAt: Any = None


class LoginBody(_Body):
    email: str
    password: str


class ApiKeyBody(_Body):
    name: str
    #: ISO 8601 or epoch milliseconds.
    expiresAt: str | float | None = None
