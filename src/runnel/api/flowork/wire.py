"""Service values in the Flowork wire format (field names and shapes of the original
gateway), in one place."""

from __future__ import annotations

from typing import Any

from runnel.api.common.times import iso_utc_or_none as iso
from runnel.services.core_engine.job_events import FLOWORK_STATUS
from runnel.services.dashboard import DashboardSummary, PeriodCounts
from runnel.services.engine_sharing import EngineShare
from runnel.services.engines import EngineInfo, SharedEngine
from runnel.services.identities import Profile
from runnel.services.kill_switch import DisabledComponent
from runnel.services.presets import Preset
from runnel.services.share_links import ShareGrant, ShareLink
from runnel.services.variables import Variable

__all__ = [
    "FLOWORK_STATUS",
    "dashboard_json",
    "disabled_component_json",
    "engine_json",
    "engine_share_json",
    "iso",
    "preset_json",
    "profile_json",
    "share_grant_json",
    "share_link_json",
    "shared_engine_json",
    "variable_json",
]


def profile_json(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "username": profile.username,
        "email": profile.email,
        "address": profile.address,
        "tier": profile.tier,
        "permissions": list(profile.permissions),
    }


def engine_json(engine: EngineInfo) -> dict[str, Any]:
    return {
        "id": engine.id,
        "name": engine.name,
        "status": engine.status,
        "last_seen": iso(engine.last_seen_at),
        "embedded": engine.embedded,
    }


def shared_engine_json(shared: SharedEngine) -> dict[str, Any]:
    owner = shared.owner
    return {
        "id": shared.engine.id,
        "name": shared.engine.name,
        "status": shared.engine.status,
        "owner": {"user_id": owner.id, "username": owner.username, "email": owner.email},
        "shared_at": iso(shared.shared_at),
    }


def engine_share_json(share: EngineShare) -> dict[str, Any]:
    user = share.user
    return {
        "user_id": user.id,
        "username": user.username,
        "email": user.email,
        "public_address": user.address,
        "shared_at": iso(share.shared_at),
    }


def share_link_json(link: ShareLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "share_id": link.id,
        "share_token": link.token,
        "permission_level": link.level.value,
        "link_name": link.link_name,
        "created_at": iso(link.created_at),
    }


def share_grant_json(grant: ShareGrant) -> dict[str, Any]:
    owner = grant.owner_address or grant.owner_id
    return {
        "workflow_name": grant.preset_name,
        "preset_name": grant.preset_name,
        "owner": owner,
        "owner_id": owner,
        "owner_username": grant.owner_username,
        "permission_level": grant.level.value,
    }


def disabled_component_json(component: DisabledComponent) -> dict[str, Any]:
    return {
        "component_id": component.component_id,
        "reason": component.reason,
        "disabled_by": component.disabled_by,
        "disabled_at": iso(component.disabled_at),
    }


def preset_json(preset: Preset) -> dict[str, Any]:
    return {
        "name": preset.name,
        "owner": preset.owner,
        "version": preset.version,
        "author": preset.author,
        "saved_at": iso(preset.created_at),
        "hash": preset.hash,
        "workflow_data": preset.workflow_data,
    }


def variable_json(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "value": variable.value,
        "values": list(variable.values),
        "mode": variable.mode.value,
        "is_secret": variable.is_secret,
        "is_enabled": variable.is_enabled,
    }


def _period_json(period: PeriodCounts) -> dict[str, Any]:
    return {
        "since": iso(period.since),
        "total": period.total,
        "by_status": {FLOWORK_STATUS[s]: count for s, count in period.by_status.items()},
    }


def dashboard_json(summary: DashboardSummary) -> dict[str, Any]:
    return {
        "today": _period_json(summary.today),
        "this_week": _period_json(summary.this_week),
        "running_now": summary.running_now,
        "success_rate": summary.success_rate,
        "average_duration_ms": summary.average_duration_ms,
    }
