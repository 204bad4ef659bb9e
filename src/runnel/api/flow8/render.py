"""The services' values as flow8 JSON (camelCase, ISO 8601 times), and flow8 bodies back
into the services' values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runnel.api.flow8.common import iso
from runnel.api.flow8.schemas import FlowBody, FlowletBody
from runnel.services.accounts import ApiKeyInfo, UserInfo
from runnel.services.channels import Channel
from runnel.services.flows import (
    ExecutionSpec,
    Flow,
    FlowletSpec,
    FlowSpec,
    NotifySpec,
    RetrySpec,
)
from runnel.services.groups import Group
from runnel.services.kv import KvEntry
from runnel.services.plays import Layer, Play, PlayError
from runnel.services.schedules import Schedule

__all__ = [
    "api_key_json",
    "channel_json",
    "flow_json",
    "flow_spec",
    "flowlet_json",
    "flowlet_spec",
    "group_json",
    "kv_json",
    "layer_json",
    "play_json",
    "schedule_json",
    "user_json",
]


def user_json(user: UserInfo) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.display_name,
        "displayName": user.display_name,
        "role": user.role.value,
        "roles": [user.role.value],
        "createdAt": iso(user.created_at),
    }


def api_key_json(key: ApiKeyInfo) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "createdAt": iso(key.created_at),
        "lastUsedAt": iso(key.last_used_at),
        "expiresAt": iso(key.expires_at),
    }


def _retry_json(retry: RetrySpec | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    return {
        "maxRetries": retry.max_retries,
        "initialDelayMs": retry.initial_delay_ms,
        "maxDelayMs": retry.max_delay_ms,
        "backoffMultiplier": retry.backoff_multiplier,
        "jitter": retry.jitter,
    }


def flowlet_json(flowlet: FlowletSpec) -> dict[str, Any]:
    return {
        "id": flowlet.id,
        "ref": flowlet.ref,
        "appId": flowlet.app_id,
        "args": dict(flowlet.args),
        "filters": flowlet.filters,
        "timeout": flowlet.timeout_ms,
        "retry": _retry_json(flowlet.retry),
        "onError": flowlet.on_error,
        "deferAfterMs": flowlet.defer_after_ms,
        "needsApproval": flowlet.needs_approval,
        "skipOutputMapping": flowlet.skip_output_mapping,
    }


def flow_json(flow: Flow) -> dict[str, Any]:
    spec = flow.spec
    return {
        "id": flow.id,
        "name": spec.name,
        "description": spec.description,
        "category": spec.category,
        "enabled": spec.enabled,
        "groupId": spec.group_id,
        "ownerId": flow.owner,
        "flowlets": [flowlet_json(flowlet) for flowlet in spec.flowlets],
        "notify": {"onFail": list(spec.notify.on_fail), "onFinish": list(spec.notify.on_finish)},
        "executionConfig": {
            "timeoutMs": spec.execution.timeout_ms,
            "maxParallel": spec.execution.max_parallel,
        },
        "version": flow.version,
        "chain": flow.chain,
        "createdAt": iso(flow.created_at),
        "updatedAt": iso(flow.updated_at),
    }


def flowlet_spec(body: FlowletBody) -> FlowletSpec:
    retry = None
    if body.retry is not None:
        jitter = body.retry.jitter
        retry = RetrySpec(
            max_retries=body.retry.maxRetries,
            initial_delay_ms=body.retry.initialDelayMs,
            max_delay_ms=body.retry.maxDelayMs,
            backoff_multiplier=body.retry.backoffMultiplier,
            jitter=(0.5 if jitter else 0.0) if isinstance(jitter, bool) else float(jitter),
        )
    return FlowletSpec(
        id=body.id,
        ref=body.ref,
        app_id=body.appId,
        args=body.args,
        filters=body.filters,
        timeout_ms=body.timeout,
        retry=retry,
        on_error=body.onError,
        defer_after_ms=body.deferAfterMs or None,
        needs_approval=body.needsApproval,
        skip_output_mapping=body.skipOutputMapping,
    )


def flow_spec(body: FlowBody) -> FlowSpec:
    notify = body.notify
    execution = body.executionConfig
    return FlowSpec(
        name=body.name,
        description=body.description,
        category=body.category,
        enabled=body.enabled,
        group_id=body.groupId if body.groupId is not None else body.group,
        flowlets=tuple(flowlet_spec(flowlet) for flowlet in body.flowlets),
        notify=NotifySpec(tuple(notify.onFail), tuple(notify.onFinish))
        if notify is not None
        else NotifySpec(),
        execution=ExecutionSpec(execution.timeoutMs, execution.maxParallel)
        if execution is not None
        else ExecutionSpec(),
    )


def _error_json(error: PlayError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "ref": error.ref}


def play_json(play: Play) -> dict[str, Any]:
    return {
        "id": play.id,
        "playId": play.id,
        "flowId": play.flow_id,
        "flowVersion": play.flow_version,
        "state": play.state.value,
        "args": dict(play.args),
        "trigger": play.trigger,
        "createdAt": iso(play.created_at),
        "startedAt": iso(play.started_at),
        "completedAt": iso(play.completed_at),
        "error": _error_json(play.error),
        "out": dict(play.out) if play.out is not None else None,
    }


def layer_json(layer: Layer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": layer.id,
        "ref": layer.ref,
        "appId": layer.app_id,
        "state": layer.state.value,
        "startedAt": iso(layer.started_at),
        "completedAt": iso(layer.completed_at),
        "out": dict(layer.out) if layer.out is not None else None,
        "error": _error_json(layer.error),
        "attempts": layer.attempts,
    }
    if layer.wait is not None:
        wait = dict(layer.wait)
        if "due_at" in wait:
            wait["dueAt"] = iso(wait.pop("due_at"))
        body["waitingFor"] = wait
    if layer.decision is not None:
        decision = dict(layer.decision)
        body["approval"] = {
            "approved": decision.get("approved"),
            "by": decision.get("by"),
            "comment": decision.get("comment"),
            "at": iso(decision.get("at")),
        }
    return body


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "members": [
            {
                "userId": member.user_id,
                "email": member.email,
                "displayName": member.display_name,
                "role": member.role.value,
                "addedAt": iso(member.added_at),
            }
            for member in group.members
        ],
        "myRole": group.my_role.value if group.my_role is not None else None,
        "createdBy": group.created_by,
        "createdAt": iso(group.created_at),
        "updatedAt": iso(group.updated_at),
    }


def kv_json(entry: KvEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "key": entry.key,
        "value": entry.value,
        "groupId": entry.group_id,
        "createdAt": iso(entry.created_at),
        "updatedAt": iso(entry.updated_at),
        "expiresAt": iso(entry.expires_at),
    }


def channel_json(channel: Channel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "type": channel.type,
        "config": dict(channel.settings),
        "groupId": channel.group_id,
        "ownerId": channel.owner,
        "createdAt": iso(channel.created_at),
        "updatedAt": iso(channel.updated_at),
    }


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "flowId": schedule.flow_id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "args": dict(schedule.args),
        "enabled": schedule.enabled,
        "catchup": schedule.catchup,
        "nextRunAt": iso(schedule.next_run_at),
        "lastRunAt": iso(schedule.last_run_at),
        "ownerId": schedule.owner,
        "createdAt": iso(schedule.created_at),
        "updatedAt": iso(schedule.updated_at),
    }


def merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A PUT body over the current answer: fields left out keep their values."""
    return {**current, **changes}
