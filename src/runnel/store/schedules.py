"""Schedules and their fires.

A schedule runs a workflow at the times of a cron expression in a time zone. Its
``next_run_at`` is the next fire time not yet handled. A fire is claimed by inserting
(schedule id, fire time) into ``schedule_fires``, whose primary key lets exactly one
claimer win whichever process tries; the claim also checks, in the same statement, that
the schedule still exists and is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from runnel.store._repo import RepositoryMixin, float_or_none
from runnel.store.codec import dumps, loads

__all__ = ["ScheduleRecord", "SchedulesMixin"]


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    id: str
    workflow_id: str
    cron: str
    timezone: str
    created_at: float
    updated_at: float
    args: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    catchup: str = "latest"
    next_run_at: float | None = None
    last_run_at: float | None = None
    owner: str | None = None
    #: Set when the schedule mirrors a workflow's Cron trigger.
    trigger_id: str | None = None


_COLUMNS: Final = (
    "id, workflow_id, trigger_id, owner, cron, timezone, args, enabled, catchup, "
    "next_run_at, last_run_at, created_at, updated_at"
)
_PREFIXED: Final = ", ".join(f"s.{name.strip()}" for name in _COLUMNS.split(","))
_INSERT: Final = f"""
INSERT INTO schedules ({_COLUMNS})
VALUES (:id, :workflow_id, :trigger_id, :owner, :cron, :timezone, :args, :enabled,
        :catchup, :next_run_at, :last_run_at, :created_at, :updated_at)
"""
_UPDATE: Final = """
UPDATE schedules SET workflow_id = :workflow_id, cron = :cron, timezone = :timezone,
    args = :args, enabled = :enabled, catchup = :catchup, next_run_at = :next_run_at,
    updated_at = :updated_at
WHERE id = :id
"""
_SELECT: Final = f"SELECT {_COLUMNS} FROM schedules WHERE id = :id"
_DELETE: Final = "DELETE FROM schedules WHERE id = :id"
_BY_WORKFLOW: Final = f"""
SELECT {_COLUMNS} FROM schedules WHERE workflow_id = :workflow_id ORDER BY created_at, id
"""
_TRIGGER_SCHEDULES: Final = f"""
SELECT {_COLUMNS} FROM schedules WHERE trigger_id IS NOT NULL ORDER BY created_at, id
"""
# flow8 lists its own schedules only (not those mirroring Cron triggers), of the flows the
# viewer may see.
_LISTED: Final = """
FROM schedules s JOIN workflows w ON w.id = s.workflow_id
WHERE s.trigger_id IS NULL AND w.deleted_at IS NULL {visible} {by_flow}
"""
_VISIBLE: Final = """AND (w.owner = :viewer
    OR w.group_id IN (SELECT group_id FROM group_members WHERE user_id = :viewer))"""
_LIST: Final = f"""
SELECT {_PREFIXED} {_LISTED}
ORDER BY s.created_at, s.id LIMIT :limit OFFSET :offset
"""
_COUNT: Final = f"SELECT COUNT(*) {_LISTED}"
_DUE: Final = f"""
SELECT {_COLUMNS} FROM schedules
WHERE enabled = :true AND next_run_at IS NOT NULL AND next_run_at <= :now
ORDER BY next_run_at LIMIT :limit
"""
_NEXT_DUE: Final = "SELECT MIN(next_run_at) FROM schedules WHERE enabled = :true"
_ADVANCE: Final = """
UPDATE schedules SET next_run_at = :next_run_at,
    last_run_at = COALESCE(:last_run_at, last_run_at)
WHERE id = :id AND next_run_at = :expected
"""
_CLAIM_FIRE: Final = """
INSERT INTO schedule_fires (schedule_id, fire_time, fired_at)
SELECT :schedule_id, :fire_time, :now
WHERE EXISTS (SELECT 1 FROM schedules WHERE id = :schedule_id AND enabled = :true)
ON CONFLICT (schedule_id, fire_time) DO NOTHING
"""
_SET_FIRE_EXECUTION: Final = """
UPDATE schedule_fires SET execution_id = :execution_id
WHERE schedule_id = :schedule_id AND fire_time = :fire_time
"""
_UNSTARTED: Final = """
SELECT schedule_id, fire_time FROM schedule_fires
WHERE execution_id IS NULL AND fired_at < :before
ORDER BY fired_at LIMIT 100
"""
_PRUNE_FIRES: Final = "DELETE FROM schedule_fires WHERE fired_at < :before"
_COUNT_FIRES: Final = "SELECT COUNT(*) FROM schedule_fires WHERE schedule_id = :schedule_id"
_LIST_FIRES: Final = """
SELECT fire_time, execution_id FROM schedule_fires WHERE schedule_id = :schedule_id
ORDER BY fire_time
"""


def _record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        id=row[0],
        workflow_id=row[1],
        trigger_id=row[2],
        owner=row[3],
        cron=row[4],
        timezone=row[5],
        args=loads(row[6]),
        enabled=bool(row[7]),
        catchup=row[8],
        next_run_at=float_or_none(row[9]),
        last_run_at=float_or_none(row[10]),
        created_at=float(row[11]),
        updated_at=float(row[12]),
    )


def _row(schedule: ScheduleRecord) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "workflow_id": schedule.workflow_id,
        "trigger_id": schedule.trigger_id,
        "owner": schedule.owner,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "args": dumps(schedule.args),
        "enabled": schedule.enabled,
        "catchup": schedule.catchup,
        "next_run_at": schedule.next_run_at,
        "last_run_at": schedule.last_run_at,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


class SchedulesMixin(RepositoryMixin):
    """Schedules and fires, as methods of ``SqlStore``."""

    async def create_schedule(self, schedule: ScheduleRecord) -> None:
        await self._change(_INSERT, _row(schedule))

    async def update_schedule(self, schedule: ScheduleRecord) -> bool:
        """Replace the settings (not the owner, trigger or last run) of a schedule."""
        return await self._change(_UPDATE, _row(schedule)) == 1

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        row = await self._fetch_one(_SELECT, {"id": schedule_id})
        return None if row is None else _record(row)

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule and its fire history."""
        return await self._change(_DELETE, {"id": schedule_id}) == 1

    async def list_schedules(
        self,
        viewer: str | None,
        limit: int,
        offset: int,
        workflow_id: str | None = None,
    ) -> tuple[list[ScheduleRecord], int]:
        """flow8's schedules of the workflows ``viewer`` may see (None: all)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        visible = ""
        by_flow = ""
        if viewer is not None:
            visible = _VISIBLE
            params["viewer"] = viewer
        if workflow_id is not None:
            by_flow = "AND s.workflow_id = :workflow_id"
            params["workflow_id"] = workflow_id
        rows = await self._fetch_all(_LIST.format(visible=visible, by_flow=by_flow), params)
        total = await self._scalar(_COUNT.format(visible=visible, by_flow=by_flow), params)
        return [_record(row) for row in rows], int(total or 0)

    async def workflow_schedules(self, workflow_id: str) -> list[ScheduleRecord]:
        rows = await self._fetch_all(_BY_WORKFLOW, {"workflow_id": workflow_id})
        return [_record(row) for row in rows]

    async def trigger_schedules(self) -> list[ScheduleRecord]:
        """Every schedule that mirrors a workflow's Cron trigger."""
        return [_record(row) for row in await self._fetch_all(_TRIGGER_SCHEDULES)]

    async def due_schedules(self, now: float, limit: int = 100) -> list[ScheduleRecord]:
        """Enabled schedules whose next fire time has come, the most overdue first."""
        rows = await self._fetch_all(_DUE, {"now": now, "limit": limit, "true": True})
        return [_record(row) for row in rows]

    async def next_schedule_due(self) -> float | None:
        """The earliest ``next_run_at`` of the enabled schedules."""
        return float_or_none(await self._scalar(_NEXT_DUE, {"true": True}))

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float,
        next_run_at: float | None,
        last_run_at: float | None,
    ) -> bool:
        """Move ``next_run_at`` on from ``expected`` (False if another process did)."""
        changed = await self._change(
            _ADVANCE,
            {
                "id": schedule_id,
                "expected": expected,
                "next_run_at": next_run_at,
                "last_run_at": last_run_at,
            },
        )
        return changed == 1

    async def claim_fire(self, schedule_id: str, fire_time: float, now: float) -> bool:
        """True for the one caller that claims this fire of an existing, enabled
        schedule; False for everyone else (already fired, disabled or deleted)."""
        changed = await self._change(
            _CLAIM_FIRE,
            {"schedule_id": schedule_id, "fire_time": fire_time, "now": now, "true": True},
        )
        return changed == 1

    async def set_fire_execution(
        self, schedule_id: str, fire_time: float, execution_id: str
    ) -> None:
        await self._change(
            _SET_FIRE_EXECUTION,
            {"schedule_id": schedule_id, "fire_time": fire_time, "execution_id": execution_id},
        )

    async def schedule_fires(self, schedule_id: str) -> list[tuple[float, str | None]]:
        """(fire time, execution id) of every claimed fire, oldest first."""
        rows = await self._fetch_all(_LIST_FIRES, {"schedule_id": schedule_id})
        return [(float(row[0]), row[1]) for row in rows]

    async def count_schedule_fires(self, schedule_id: str) -> int:
        return int(await self._scalar(_COUNT_FIRES, {"schedule_id": schedule_id}) or 0)

    async def unstarted_fires(self, before: float) -> list[tuple[str, float]]:
        """Fires claimed before ``before`` whose execution was never started."""
        rows = await self._fetch_all(_UNSTARTED, {"before": before})
        return [(row[0], float(row[1])) for row in rows]

    async def prune_fires(self, before: float) -> int:
        """Forget fires claimed before ``before`` (their executions stay)."""
        return await self._change(_PRUNE_FIRES, {"before": before})
