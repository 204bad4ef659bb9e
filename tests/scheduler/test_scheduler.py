"""The scheduler, driven by a fake clock: DST in Europe/Berlin and America/New_York,
catch-up after downtime, exactly one fire with two schedulers, and stopping at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from runnel.model.workflow import Node, Trigger, TriggerKind, Workflow
from runnel.platform import Platform
from runnel.scheduler import Fired, Scheduler, fire_execution_id
from runnel.services.accounts import Principal
from runnel.services.executions import ExecutionService
from runnel.services.flows import FlowletSpec, FlowSpec
from runnel.services.schedules import ScheduleService, ScheduleSpec
from runnel.store import SqlStore

from .conftest import FakeClock

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


async def new_flow(platform: Platform, owner: Principal, name: str = "Scheduled") -> str:
    flow = await platform.flow8.flows.create(
        owner,
        FlowSpec(name=name, flowlets=(FlowletSpec(ref="a", app_id="set", args={"values": {}}),)),
    )
    return flow.id


def schedules(platform: Platform, clock: FakeClock) -> ScheduleService:
    return ScheduleService(platform.store, platform.flow8.access, clock=clock)


def scheduler(platform: Platform, clock: FakeClock, **options: float) -> Scheduler:
    return Scheduler(
        platform.store, platform.executions, schedules(platform, clock), clock=clock, **options
    )


async def run_through(
    runner: Scheduler, clock: FakeClock, start: datetime, end: datetime, step: timedelta
) -> list[Fired]:
    """Tick every ``step`` from ``start`` to ``end`` (as a scheduler that never sleeps
    through a fire would)."""
    fired: list[Fired] = []
    moment = start
    while moment <= end:
        clock.set(moment)
        fired.extend(await runner.tick())
        moment += step
    return fired


def local(fired: list[Fired], zone: ZoneInfo) -> list[str]:
    return [datetime.fromtimestamp(f.fire_time, zone).isoformat() for f in fired]


async def test_berlin_spring_forward_fires_the_skipped_time_once(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    flow_id = await new_flow(platform, member)
    clock.set(datetime(2024, 3, 29, 12, 0, tzinfo=UTC))
    await schedules(platform, clock).create(
        member, ScheduleSpec(flow_id, "30 2 * * *", "Europe/Berlin")
    )
    fired = await run_through(
        scheduler(platform, clock),
        clock,
        datetime(2024, 3, 29, 12, 0, tzinfo=UTC),
        datetime(2024, 4, 1, 12, 0, tzinfo=UTC),
        timedelta(minutes=10),
    )
    # 02:30 does not exist on 31 March: it fires at 03:30 CEST, once.
    assert local(fired, BERLIN) == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:30:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]
    executions, total = await platform.executions.list(workflow_id=flow_id)
    assert total == 3
    assert {e.trigger for e in executions} == {"schedule"}


async def test_berlin_fall_back_fires_a_daily_time_once_and_hourly_in_both_hours(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    daily = await new_flow(platform, member, "daily")
    hourly = await new_flow(platform, member, "hourly")
    clock.set(datetime(2024, 10, 26, 20, 0, tzinfo=UTC))
    service = schedules(platform, clock)
    await service.create(member, ScheduleSpec(daily, "30 2 * * *", "Europe/Berlin"))
    await service.create(member, ScheduleSpec(hourly, "0 * * * *", "Europe/Berlin"))
    fired = await run_through(
        scheduler(platform, clock),
        clock,
        datetime(2024, 10, 26, 20, 0, tzinfo=UTC),
        datetime(2024, 10, 27, 4, 0, tzinfo=UTC),
        timedelta(minutes=5),
    )
    by_flow: dict[str, list[Fired]] = {}
    for one in fired:
        record = await platform.store.get_schedule(one.schedule_id)
        assert record is not None
        by_flow.setdefault(record.workflow_id, []).append(one)
    # 02:30 happens twice on 27 October: the daily schedule fires at the first one only.
    assert local(by_flow[daily], BERLIN) == ["2024-10-27T02:30:00+02:00"]
    # An hourly schedule follows real time: 02:00 CEST and 02:00 CET are an hour apart.
    hours = local(by_flow[hourly], BERLIN)
    assert "2024-10-27T02:00:00+02:00" in hours
    assert "2024-10-27T02:00:00+01:00" in hours
    assert len(hours) == len(set(hours)) == 8  # 21:00Z ... 04:00Z, once each


async def test_new_york_dst_changes(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    spring = await new_flow(platform, member, "spring")
    fall = await new_flow(platform, member, "fall")
    clock.set(datetime(2024, 3, 9, 12, 0, tzinfo=UTC))
    service = schedules(platform, clock)
    await service.create(member, ScheduleSpec(spring, "30 2 * * *", "America/New_York"))
    runner = scheduler(platform, clock)
    fired = await run_through(
        runner,
        clock,
        datetime(2024, 3, 9, 12, 0, tzinfo=UTC),
        datetime(2024, 3, 11, 12, 0, tzinfo=UTC),
        timedelta(minutes=15),
    )
    assert local(fired, NEW_YORK) == [
        "2024-03-10T03:30:00-04:00",  # 02:30 was skipped by the jump: fired right after it
        "2024-03-11T02:30:00-04:00",
    ]
    clock.set(datetime(2024, 11, 2, 12, 0, tzinfo=UTC))
    created = await service.create(member, ScheduleSpec(fall, "30 1 * * *", "America/New_York"))
    fired = await run_through(
        runner,
        clock,
        datetime(2024, 11, 2, 12, 0, tzinfo=UTC),
        datetime(2024, 11, 4, 12, 0, tzinfo=UTC),
        timedelta(minutes=15),
    )
    fired = [f for f in fired if f.schedule_id == created.id]
    assert local(fired, NEW_YORK) == [
        "2024-11-03T01:30:00-04:00",  # 01:30 happens twice: once is enough
        "2024-11-04T01:30:00-05:00",
    ]


@pytest.mark.parametrize(
    ("catchup", "expected_hours"),
    [("all", [1, 2, 3, 4, 5]), ("latest", [5]), ("none", [])],
)
async def test_catch_up_after_downtime(
    platform: Platform,
    member: Principal,
    clock: FakeClock,
    catchup: str,
    expected_hours: list[int],
) -> None:
    flow_id = await new_flow(platform, member)
    start = datetime(2024, 6, 1, 0, 30, tzinfo=UTC)
    clock.set(start)
    created = await schedules(platform, clock).create(
        member,
        ScheduleSpec(flow_id, "0 * * * *", "UTC", args={"n": 1}, catchup=catchup),
    )
    assert created.next_run_at == datetime(2024, 6, 1, 1, 0, tzinfo=UTC).timestamp()
    # The server was down from 00:30 to 05:20.
    clock.set(datetime(2024, 6, 1, 5, 20, tzinfo=UTC))
    runner = scheduler(platform, clock)
    fired = await runner.tick()
    assert [datetime.fromtimestamp(f.fire_time, UTC).hour for f in fired] == expected_hours
    # Then it goes on normally, whatever the mode.
    clock.set(datetime(2024, 6, 1, 6, 0, 1, tzinfo=UTC))
    fired = await runner.tick()
    assert [datetime.fromtimestamp(f.fire_time, UTC).hour for f in fired] == [6]
    execution = await platform.store.get_execution(fired[0].execution_id or "")
    assert execution is not None and dict(execution.inputs) == {"n": 1}
    record = await platform.store.get_schedule(created.id)
    assert record is not None
    assert record.next_run_at == datetime(2024, 6, 1, 7, 0, tzinfo=UTC).timestamp()


async def test_two_schedulers_fire_each_time_once(
    platform: Platform, member: Principal, clock: FakeClock, database_url: str
) -> None:
    flow_id = await new_flow(platform, member)
    clock.set(datetime(2024, 6, 1, 0, 0, 30, tzinfo=UTC))
    await schedules(platform, clock).create(member, ScheduleSpec(flow_id, "* * * * *", "UTC"))
    # A second scheduler on its own connection to the same database, as another process.
    other_store = SqlStore.open(database_url, migrate=False)
    try:
        other_executions = ExecutionService(
            other_store, platform.bus, platform.workflows, platform.worker
        )
        first = scheduler(platform, clock)
        second = Scheduler(other_store, other_executions, schedules(platform, clock), clock=clock)
        fired: list[Fired] = []
        for minute in range(1, 6):
            clock.set(datetime(2024, 6, 1, 0, minute, 1, tzinfo=UTC))
            for result in await asyncio.gather(first.tick(), second.tick(), first.tick()):
                fired.extend(result)
    finally:
        await other_store.close()
    assert len(fired) == 5
    assert len({f.fire_time for f in fired}) == 5
    _, total = await platform.executions.list(workflow_id=flow_id)
    assert total == 5


async def test_a_disabled_or_deleted_schedule_stops_at_once(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    flow_id = await new_flow(platform, member)
    clock.set(datetime(2024, 6, 1, 0, 0, tzinfo=UTC))
    service = schedules(platform, clock)
    created = await service.create(member, ScheduleSpec(flow_id, "*/5 * * * *", "UTC"))
    due = datetime(2024, 6, 1, 0, 5, tzinfo=UTC).timestamp()
    # Disabled between a scheduler's read of the due list and its claim: the claim fails.
    records = await platform.store.due_schedules(due)
    assert [r.id for r in records] == [created.id]
    await service.update(
        member, created.id, ScheduleSpec(flow_id, "*/5 * * * *", "UTC", enabled=False)
    )
    assert not await platform.store.claim_fire(created.id, due, due)
    clock.set(datetime(2024, 6, 1, 1, 0, tzinfo=UTC))
    assert await scheduler(platform, clock).tick() == []
    # Enabled again: it counts from now, missed fires are not made up.
    enabled = await service.update(member, created.id, ScheduleSpec(flow_id, "*/5 * * * *"))
    assert enabled.next_run_at == datetime(2024, 6, 1, 1, 5, tzinfo=UTC).timestamp()
    await service.delete(member, created.id)
    clock.set(datetime(2024, 6, 1, 2, 0, tzinfo=UTC))
    assert await scheduler(platform, clock).tick() == []
    assert not await platform.store.claim_fire(created.id, clock.now, clock.now)
    _, total = await platform.executions.list(workflow_id=flow_id)
    assert total == 0


async def test_a_disabled_flow_is_not_run(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    flow_id = await new_flow(platform, member)
    flow = await platform.flow8.flows.get(member, flow_id)
    await platform.flow8.flows.update(
        member, flow_id, FlowSpec(name=flow.spec.name, enabled=False, flowlets=flow.spec.flowlets)
    )
    clock.set(datetime(2024, 6, 1, 0, 0, tzinfo=UTC))
    await schedules(platform, clock).create(member, ScheduleSpec(flow_id, "* * * * *"))
    clock.set(datetime(2024, 6, 1, 0, 1, 5, tzinfo=UTC))
    fired = await scheduler(platform, clock).tick()
    assert [f.execution_id for f in fired] == [None]
    _, total = await platform.executions.list(workflow_id=flow_id)
    assert total == 0


async def test_flow_engine_cron_triggers_use_the_same_scheduler(
    platform: Platform, clock: FakeClock
) -> None:
    workflow = Workflow(
        id="cron-wf",
        name="cron",
        nodes=(Node(id="n", type="transform.set", config={"values": {"a": 1}}),),
        triggers=(
            Trigger("every-minute", TriggerKind.CRON, {"expression": "0 * * * * *"}),
            Trigger("off", TriggerKind.CRON, {"expression": "0 0 * * *"}, enabled=False),
        ),
    )
    await platform.workflows.create(workflow)
    clock.set(datetime(2024, 6, 1, 0, 0, 30, tzinfo=UTC))
    runner = scheduler(platform, clock)
    await runner.reconcile_triggers()
    clock.set(datetime(2024, 6, 1, 0, 1, 0, tzinfo=UTC))
    fired = await runner.tick()
    assert len(fired) == 1
    execution = await platform.store.get_execution(fired[0].execution_id or "")
    assert execution is not None and execution.trigger == "cron"
    # Removing the trigger (a new version) removes its schedule.
    plain = Workflow(id="cron-wf", name="cron", nodes=workflow.nodes)
    await platform.workflows.update("cron-wf", plain)
    await runner.reconcile_triggers()
    assert await platform.store.trigger_schedules() == []


async def test_a_fire_claimed_by_a_dead_process_is_started_once(
    platform: Platform, member: Principal, clock: FakeClock
) -> None:
    flow_id = await new_flow(platform, member)
    clock.set(datetime(2024, 6, 1, 0, 0, tzinfo=UTC))
    created = await schedules(platform, clock).create(member, ScheduleSpec(flow_id, "0 * * * *"))
    fire_time = datetime(2024, 6, 1, 1, 0, tzinfo=UTC).timestamp()
    # A process claimed the fire and died before starting the execution.
    assert await platform.store.claim_fire(created.id, fire_time, fire_time)
    runner = scheduler(platform, clock)
    clock.now = fire_time + 10
    assert await runner.start_unstarted(clock.now) == []  # it may still be starting it
    clock.now = fire_time + 120
    started = await runner.start_unstarted(clock.now)
    assert [f.execution_id for f in started] == [fire_execution_id(created.id, fire_time)]
    assert await runner.start_unstarted(clock.now) == []
    _, total = await platform.executions.list(workflow_id=flow_id)
    assert total == 1
