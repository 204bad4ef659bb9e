"""flow8 schedules: run a flow at the times of a cron expression in an IANA time zone.

``catchup`` says what happens to fire times missed while no scheduler ran: ``none`` skips
them, ``latest`` (the default) fires the most recent one, ``all`` fires each. The firing
itself is ``runnel.scheduler``'s; this module keeps the schedules and their
``nextRunAt``. Editing needs the ``edit`` right on the flow, seeing it ``view``.

Workflows' Cron triggers (Flow Engine) become schedules too (``sync_triggers``), so one
scheduler fires both; those are not listed through flow8.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from runnel.model.workflow import TriggerKind, Workflow
from runnel.services.access import Access, Action
from runnel.services.accounts import Principal
from runnel.services.cron import CronSchedule, parse_cron
from runnel.services.errors import InvalidInput, NotFound, ProblemDetail
from runnel.services.flows import flow_resource
from runnel.store import SqlStore
from runnel.store.errors import ConflictError
from runnel.store.schedules import ScheduleRecord

__all__ = [
    "CATCHUP_MODES",
    "Schedule",
    "ScheduleService",
    "ScheduleSpec",
    "cron_of",
    "trigger_schedule_id",
]

CATCHUP_MODES: Final = ("none", "latest", "all")


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    flow_id: str
    cron: str
    timezone: str = "UTC"
    args: Mapping[str, Any] | None = None
    enabled: bool = True
    catchup: str = "latest"


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    flow_id: str
    cron: str
    timezone: str
    args: Mapping[str, Any]
    enabled: bool
    catchup: str
    next_run_at: float | None
    last_run_at: float | None
    owner: str | None
    created_at: float
    updated_at: float


def cron_of(record: ScheduleRecord) -> CronSchedule:
    """The parsed cron of a stored schedule (trigger schedules may have seconds)."""
    return parse_cron(record.cron, record.timezone, allow_seconds=record.trigger_id is not None)


def trigger_schedule_id(workflow_id: str, trigger_id: str) -> str:
    """The schedule id mirroring a workflow's Cron trigger (stable across versions)."""
    return f"trigger:{workflow_id}:{trigger_id}"


def _schedule(record: ScheduleRecord) -> Schedule:
    return Schedule(
        id=record.id,
        flow_id=record.workflow_id,
        cron=record.cron,
        timezone=record.timezone,
        args=record.args,
        enabled=record.enabled,
        catchup=record.catchup,
        next_run_at=record.next_run_at if record.enabled else None,
        last_run_at=record.last_run_at,
        owner=record.owner,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


class ScheduleService:
    """Schedules, checked by ``Access`` against their flow."""

    def __init__(
        self,
        store: SqlStore,
        access: Access,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.access = access
        self._clock = clock
        #: Told whenever a schedule changes (the scheduler wakes to recompute its sleep).
        self.on_change = on_change

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _check(self, spec: ScheduleSpec) -> CronSchedule:
        problems: list[ProblemDetail] = []
        if spec.catchup not in CATCHUP_MODES:
            problems.append(ProblemDetail(f"must be one of {', '.join(CATCHUP_MODES)}", "catchup"))
        try:
            cron = parse_cron(spec.cron, spec.timezone)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            cron = None
        if problems or cron is None:
            raise InvalidInput("invalid schedule: " + "; ".join(map(str, problems)), problems)
        return cron

    async def _flow(self, principal: Principal, flow_id: str, action: Action) -> Workflow:
        workflow = await self.store.get_workflow(flow_id)
        if workflow is None:
            raise NotFound("flow", flow_id)
        await self.access.check(principal, flow_resource(workflow), action)
        return workflow

    async def _record(
        self, principal: Principal, schedule_id: str, action: Action
    ) -> ScheduleRecord:
        record = await self.store.get_schedule(schedule_id)
        if record is None or record.trigger_id is not None:
            raise NotFound("schedule", schedule_id)
        try:
            await self._flow(principal, record.workflow_id, action)
        except NotFound:
            raise NotFound("schedule", schedule_id) from None
        return record

    async def create(self, principal: Principal, spec: ScheduleSpec) -> Schedule:
        cron = self._check(spec)
        await self._flow(principal, spec.flow_id, Action.EDIT)
        now = self._clock()
        record = ScheduleRecord(
            id=secrets.token_hex(12),
            workflow_id=spec.flow_id,
            cron=cron.expression,
            timezone=cron.timezone,
            args=dict(spec.args or {}),
            enabled=spec.enabled,
            catchup=spec.catchup,
            next_run_at=cron.next_fire(now),
            owner=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        await self.store.create_schedule(record)
        self._changed()
        return _schedule(record)

    async def update(self, principal: Principal, schedule_id: str, spec: ScheduleSpec) -> Schedule:
        """Replace a schedule's settings; a new cron, zone or re-enabling starts counting
        from now (missed fires of the old settings are not caught up)."""
        record = await self._record(principal, schedule_id, Action.EDIT)
        cron = self._check(spec)
        if spec.flow_id != record.workflow_id:
            await self._flow(principal, spec.flow_id, Action.EDIT)
        now = self._clock()
        timing_changed = (
            cron.expression != record.cron
            or cron.timezone != record.timezone
            or (spec.enabled and not record.enabled)
        )
        next_run_at = record.next_run_at
        if timing_changed or next_run_at is None:
            next_run_at = cron.next_fire(now)
        updated = ScheduleRecord(
            id=record.id,
            workflow_id=spec.flow_id,
            cron=cron.expression,
            timezone=cron.timezone,
            args=dict(spec.args if spec.args is not None else record.args),
            enabled=spec.enabled,
            catchup=spec.catchup,
            next_run_at=next_run_at,
            last_run_at=record.last_run_at,
            owner=record.owner,
            created_at=record.created_at,
            updated_at=now,
        )
        if not await self.store.update_schedule(updated):
            raise NotFound("schedule", schedule_id)
        self._changed()
        return _schedule(updated)

    async def get(self, principal: Principal, schedule_id: str) -> Schedule:
        return _schedule(await self._record(principal, schedule_id, Action.VIEW))

    async def list(
        self,
        principal: Principal,
        *,
        flow_id: str | None = None,
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[Schedule], int]:
        records, total = await self.store.list_schedules(
            Access.viewer(principal), limit, offset, workflow_id=flow_id
        )
        return [_schedule(record) for record in records], total

    async def delete(self, principal: Principal, schedule_id: str) -> None:
        """Delete a schedule: it does not fire again, from this moment."""
        await self._record(principal, schedule_id, Action.EDIT)
        if not await self.store.delete_schedule(schedule_id):
            raise NotFound("schedule", schedule_id)
        self._changed()

    # -- Cron triggers ------------------------------------------------------------------

    async def sync_triggers(self, workflow: Workflow | None, workflow_id: str) -> None:
        """Make the schedules mirroring ``workflow``'s Cron triggers match it (None: the
        workflow is gone, its trigger schedules go too). An invalid expression is left
        out (logged by the caller's validation elsewhere)."""
        existing = {
            record.id: record
            for record in await self.store.workflow_schedules(workflow_id)
            if record.trigger_id is not None
        }
        wanted: dict[str, tuple[str, CronSchedule, bool]] = {}
        for trigger in workflow.triggers if workflow is not None else ():
            if trigger.kind is not TriggerKind.CRON:
                continue
            try:
                cron = parse_cron(
                    str(trigger.config.get("expression") or ""),
                    str(trigger.config.get("timezone") or "UTC"),
                    allow_seconds=True,
                )
            except InvalidInput:
                continue
            wanted[trigger_schedule_id(workflow_id, trigger.id)] = (
                trigger.id,
                cron,
                trigger.enabled,
            )
        now = self._clock()
        changed = False
        for schedule_id in existing:
            if schedule_id not in wanted:
                await self.store.delete_schedule(schedule_id)
                changed = True
        for schedule_id, (trigger_id, cron, enabled) in wanted.items():
            current = existing.get(schedule_id)
            if current is None:
                with contextlib.suppress(ConflictError):  # another process made it just now
                    await self.store.create_schedule(
                        ScheduleRecord(
                            id=schedule_id,
                            workflow_id=workflow_id,
                            trigger_id=trigger_id,
                            cron=cron.expression,
                            timezone=cron.timezone,
                            enabled=enabled,
                            catchup="latest",
                            next_run_at=cron.next_fire(now),
                            created_at=now,
                            updated_at=now,
                            owner=workflow.owner if workflow is not None else None,
                        )
                    )
                changed = True
            elif (current.cron, current.timezone, current.enabled) != (
                cron.expression,
                cron.timezone,
                enabled,
            ):
                await self.store.update_schedule(
                    ScheduleRecord(
                        id=schedule_id,
                        workflow_id=workflow_id,
                        trigger_id=trigger_id,
                        cron=cron.expression,
                        timezone=cron.timezone,
                        enabled=enabled,
                        catchup=current.catchup,
                        next_run_at=cron.next_fire(now),
                        created_at=current.created_at,
                        updated_at=now,
                        owner=current.owner,
                    )
                )
                changed = True
        if changed:
            self._changed()
