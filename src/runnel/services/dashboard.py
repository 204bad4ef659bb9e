"""The Flowork dashboard's summary of an engine's executions.

"Today" and "this week" are calendar periods in UTC (the week starts on Monday). The
success rate is succeeded / (succeeded + failed) this week (None before any finished);
the average duration is over this week's executions that started and finished.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runnel.model.execution import ExecutionStatus
from runnel.store import SqlStore
from runnel.store.dashboard import StatusTally

__all__ = ["DashboardService", "DashboardSummary", "PeriodCounts"]


@dataclass(frozen=True, slots=True)
class PeriodCounts:
    since: float
    total: int
    by_status: Mapping[ExecutionStatus, int]


@dataclass(frozen=True, slots=True)
class DashboardSummary:
    today: PeriodCounts
    this_week: PeriodCounts
    running_now: int
    success_rate: float | None
    average_duration_ms: float | None


class DashboardService:
    def __init__(self, store: SqlStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def summary(self) -> DashboardSummary:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        monday = midnight - dt.timedelta(days=midnight.weekday())
        today = await self.store.tally_executions_since(midnight.timestamp())
        week = await self.store.tally_executions_since(monday.timestamp())
        running = await self.store.count_executions_with_status(ExecutionStatus.RUNNING.value)
        succeeded = _count(week, ExecutionStatus.SUCCEEDED)
        finished = succeeded + _count(week, ExecutionStatus.FAILED)
        timed = sum(tally.timed for tally in week.values())
        seconds = sum(tally.total_seconds for tally in week.values())
        return DashboardSummary(
            today=_period(midnight.timestamp(), today),
            this_week=_period(monday.timestamp(), week),
            running_now=running,
            success_rate=succeeded / finished if finished else None,
            average_duration_ms=seconds * 1000.0 / timed if timed else None,
        )


def _count(tallies: Mapping[str, StatusTally], status: ExecutionStatus) -> int:
    tally = tallies.get(status.value)
    return tally.count if tally is not None else 0


def _period(since: float, tallies: Mapping[str, StatusTally]) -> PeriodCounts:
    by_status = {status: _count(tallies, status) for status in ExecutionStatus}
    return PeriodCounts(since=since, total=sum(by_status.values()), by_status=by_status)
