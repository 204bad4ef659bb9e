"""Counts of executions for the Flowork dashboard: read-only aggregates over ``executions``
(the status index and the ``created_at`` index serve them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import Dialect

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["DashboardMixin", "DashboardStatements", "StatusTally"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class StatusTally:
    """Executions of one status created in a period."""

    count: int
    #: How many of them have both a start and an end, and their total run time (seconds).
    timed: int = 0
    total_seconds: float = 0.0


TALLY_SINCE: Final = """
SELECT status,
       COUNT(*),
       COUNT(CASE WHEN started_at IS NOT NULL AND finished_at IS NOT NULL THEN 1 END),
       SUM(CASE WHEN started_at IS NOT NULL AND finished_at IS NOT NULL
                THEN finished_at - started_at END)
FROM executions WHERE created_at >= :since
GROUP BY status
"""
COUNT_STATUS: Final = "SELECT COUNT(*) FROM executions WHERE status = :status"


class DashboardStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.tally_since = render(TALLY_SINCE)
        self.count_status = render(COUNT_STATUS)


class DashboardMixin:
    """Execution aggregates, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _dashboard_statements: DashboardStatements | None = None

    @property
    def _dashboard_sql(self) -> DashboardStatements:
        if self._dashboard_statements is None:
            self._dashboard_statements = DashboardStatements(self._writer_engine.dialect)
        return self._dashboard_statements

    async def tally_executions_since(self, since: float) -> dict[str, StatusTally]:
        """Executions created at or after ``since`` (unix seconds), by status."""
        sql = self._dashboard_sql
        rows = await self._read(
            lambda r: r.exec_driver_sql(sql.tally_since, {"since": since}).all()
        )
        return {
            str(row[0]): StatusTally(int(row[1]), int(row[2]), float(row[3] or 0.0)) for row in rows
        }

    async def count_executions_with_status(self, status: str) -> int:
        sql = self._dashboard_sql
        return await self._read(
            lambda r: int(r.exec_driver_sql(sql.count_status, {"status": status}).scalar_one())
        )
