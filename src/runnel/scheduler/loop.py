"""The scheduler: fires schedules at their times, and wakes parked executions when due.

Every process that runs executions runs one. Each ``tick``:

1. fires the schedules that are due. A schedule's ``next_run_at`` is its next fire time not
   yet handled; the fire times up to now are handled as its ``catchup`` says (``none``:
   only one that is at most ``misfire_grace`` seconds late; ``latest``: the most recent;
   ``all``: each, oldest first). A fire is claimed in the store by the unique key
   (schedule, fire time), in one statement that also checks the schedule still exists and is
   enabled, so two schedulers fire it once and a disabled or deleted schedule never again.
   The execution's id is derived from the same key, so a fire whose process died between
   the claim and the start is started later by whoever finds it, still once.
2. queues the parked executions whose timer is due (deferred flowlets, long delays).

Between ticks it sleeps until the next fire time (at most ``timer_sweep_seconds``), woken
early by ``wake()`` when a schedule changes. ``clock`` is injectable: tests call ``tick``
with the times they want and never sleep.

It also mirrors the Cron triggers of workflows into schedules (``reconcile_triggers``)
whenever a workflow gains a version, and now and then deletes expired sessions and KV
entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from runnel.model.workflow import TriggerKind
from runnel.services.errors import InvalidInput, ServiceError
from runnel.services.executions import ExecutionService
from runnel.services.flows import flow_meta
from runnel.services.kv import KvService
from runnel.services.schedules import ScheduleService, cron_of
from runnel.services.sessions import SessionService
from runnel.store import SqlStore
from runnel.store.errors import ConflictError, StoreError
from runnel.store.schedules import ScheduleRecord

__all__ = ["Fired", "Scheduler", "fire_execution_id"]

log = logging.getLogger(__name__)

#: Names the executions of schedule fires (uuid5 of schedule id and fire time).
_FIRE_NAMESPACE: Final = uuid.UUID("5b0f7c1e-9a53-4d6e-8f3a-72756e6e656c")
#: A claimed fire with no execution this long after its claim is started by whoever finds it.
_UNSTARTED_AFTER_SECONDS: Final = 60.0


@dataclass(frozen=True, slots=True)
class Fired:
    """One fire this scheduler made."""

    schedule_id: str
    fire_time: float
    execution_id: str | None


def fire_execution_id(schedule_id: str, fire_time: float) -> str:
    """The execution id of a fire: the same in every process."""
    return str(uuid.uuid5(_FIRE_NAMESPACE, f"{schedule_id}@{fire_time!r}"))


class Scheduler:
    def __init__(
        self,
        store: SqlStore,
        executions: ExecutionService,
        schedules: ScheduleService,
        *,
        kv: KvService | None = None,
        sessions: SessionService | None = None,
        clock: Callable[[], float] = time.time,
        misfire_grace: float = 60.0,
        timer_sweep_seconds: float = 0.5,
        reconcile_seconds: float = 2.0,
        housekeeping_seconds: float = 600.0,
        max_catchup: int = 1000,
    ) -> None:
        self.store = store
        self.executions = executions
        self.schedules = schedules
        self.kv = kv
        self.sessions = sessions
        self.clock = clock
        self.misfire_grace = misfire_grace
        self.timer_sweep_seconds = timer_sweep_seconds
        self.reconcile_seconds = reconcile_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self.max_catchup = max_catchup
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._heads: dict[str, tuple[int, bool]] = {}
        self._last_reconcile = float("-inf")
        self._last_housekeeping = float("-inf")

    # -- lifecycle --------------------------------------------------------------------

    def wake(self) -> None:
        """Something changed (a schedule saved): look again now."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="runnel-scheduler")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the scheduler's tick failed")
            delay = self.timer_sweep_seconds
            with contextlib.suppress(Exception):
                due = await self.store.next_schedule_due()
                if due is not None:
                    delay = min(delay, max(0.0, due - self.clock()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

    async def step(self) -> list[Fired]:
        """One round of everything: triggers, due fires, timers, housekeeping."""
        now = self.clock()
        if now - self._last_reconcile >= self.reconcile_seconds:
            self._last_reconcile = now
            await self.reconcile_triggers()
            await self.start_unstarted(now)
        fired = await self.tick(now)
        await self.sweep_timers()
        if now - self._last_housekeeping >= self.housekeeping_seconds:
            self._last_housekeeping = now
            await self.housekeeping()
        return fired

    # -- schedules --------------------------------------------------------------------

    async def tick(self, now: float | None = None) -> list[Fired]:
        """Fire every schedule due at ``now`` (default: the clock); what this one fired."""
        moment = self.clock() if now is None else now
        fired: list[Fired] = []
        for record in await self.store.due_schedules(moment):
            try:
                fired.extend(await self._handle_due(record, moment))
            except Exception:
                log.exception("schedule %s: firing failed", record.id)
        return fired

    def _chosen(self, record: ScheduleRecord, due: list[float], now: float) -> list[float]:
        if record.catchup == "all":
            return due
        if record.catchup == "none":
            return [t for t in due if now - t <= self.misfire_grace][-1:]
        return due[-1:]

    async def _handle_due(self, record: ScheduleRecord, now: float) -> list[Fired]:
        expected = record.next_run_at
        assert expected is not None
        try:
            cron = cron_of(record)
        except InvalidInput as exc:
            log.error("schedule %s has an invalid cron (%s); it is stopped", record.id, exc)
            await self.store.advance_schedule(record.id, expected, None, None)
            return []
        due = [expected, *cron.fires_between(expected, now, self.max_catchup)]
        if len(due) > self.max_catchup:
            log.warning("schedule %s missed more than %d fires", record.id, self.max_catchup)
        chosen = self._chosen(record, due, now)
        fired: list[Fired] = []
        for fire_time in chosen:
            one = await self._fire(record, fire_time, now)
            if one is not None:
                fired.append(one)
        following = cron.next_fire(max(now, due[-1]))
        await self.store.advance_schedule(
            record.id, expected, following, chosen[-1] if chosen else None
        )
        return fired

    async def _fire(self, record: ScheduleRecord, fire_time: float, now: float) -> Fired | None:
        if not await self.store.claim_fire(record.id, fire_time, now):
            return None  # another scheduler fired it, or it was disabled or deleted
        execution_id = await self._start(record, fire_time)
        return Fired(record.id, fire_time, execution_id)

    async def _start(self, record: ScheduleRecord, fire_time: float) -> str | None:
        workflow = await self.store.get_workflow(record.workflow_id)
        if workflow is None or not flow_meta(workflow).get("enabled", True):
            log.info(
                "schedule %s: flow %s is gone or disabled, fire skipped",
                record.id,
                record.workflow_id,
            )
            # "": handled, nothing started (so it is not taken for an unstarted fire).
            await self.store.set_fire_execution(record.id, fire_time, "")
            return None
        execution_id = fire_execution_id(record.id, fire_time)
        trigger = "cron" if record.trigger_id is not None else "schedule"
        try:
            await self.executions.start(
                record.workflow_id, record.args, trigger=trigger, execution_id=execution_id
            )
        except ConflictError:
            pass  # started already (by a process that claimed and then died, or a retry)
        except (ServiceError, StoreError) as exc:
            log.error("schedule %s: could not start %s: %s", record.id, workflow.id, exc)
            await self.store.set_fire_execution(record.id, fire_time, "")
            return None
        await self.store.set_fire_execution(record.id, fire_time, execution_id)
        return execution_id

    async def start_unstarted(self, now: float) -> list[Fired]:
        """Fires claimed by a process that died before starting them."""
        fired: list[Fired] = []
        for schedule_id, fire_time in await self.store.unstarted_fires(
            now - _UNSTARTED_AFTER_SECONDS
        ):
            record = await self.store.get_schedule(schedule_id)
            if record is None or not record.enabled:
                continue
            execution_id = await self._start(record, fire_time)
            fired.append(Fired(schedule_id, fire_time, execution_id))
        return fired

    # -- parked executions ------------------------------------------------------------

    async def sweep_timers(self) -> list[str]:
        """Queue the parked executions whose timer is due; their ids."""
        woken = await self.store.wake_waiting()
        for execution_id in woken:
            self.executions.dispatcher.submit(execution_id)
        return woken

    # -- Cron triggers ----------------------------------------------------------------

    async def reconcile_triggers(self) -> None:
        """Mirror the Cron triggers of every workflow that changed since the last call."""
        mirrored = {record.workflow_id for record in await self.store.trigger_schedules()}
        for head in await self.store.workflow_heads():
            state = (head.latest_version, head.deleted)
            if self._heads.get(head.id) == state:
                continue
            workflow = None if head.deleted else await self.store.get_workflow(head.id)
            has_cron = workflow is not None and any(
                trigger.kind is TriggerKind.CRON for trigger in workflow.triggers
            )
            if has_cron or head.id in mirrored:
                await self.schedules.sync_triggers(workflow, head.id)
            self._heads[head.id] = state

    # -- housekeeping -----------------------------------------------------------------

    async def housekeeping(self) -> None:
        """Delete expired sessions and KV entries, and fires older than a week."""
        with contextlib.suppress(StoreError):
            await self.store.prune_fires(self.clock() - 7 * 86400.0)
            if self.sessions is not None:
                await self.sessions.purge()
            if self.kv is not None:
                await self.kv.purge()
