"""The kill switch: components the operator disabled everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.store.reading import Reader
from runnel.store.rendering import renderer

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["DisabledComponent", "KillSwitchMixin", "KillSwitchStatements"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DisabledComponent:
    """A row of ``disabled_components``."""

    component_id: str
    disabled_at: float
    reason: str | None = None
    disabled_by: str | None = None


LIST: Final = (
    "SELECT component_id, disabled_at, reason, disabled_by FROM disabled_components"
    " ORDER BY component_id"
)
INSERT: Final = """
INSERT INTO disabled_components (component_id, disabled_at, reason, disabled_by)
VALUES (:component_id, :disabled_at, :reason, :disabled_by)
ON CONFLICT (component_id) DO NOTHING
"""
DELETE: Final = "DELETE FROM disabled_components WHERE component_id = :component_id"
DELETE_ALL: Final = "DELETE FROM disabled_components"


class KillSwitchStatements:
    def __init__(self, dialect: Dialect) -> None:
        render = renderer(dialect)
        self.list = render(LIST)
        self.insert = render(INSERT)
        self.delete = render(DELETE)
        self.delete_all = render(DELETE_ALL)


def _params(component: DisabledComponent) -> dict[str, object]:
    return {
        "component_id": component.component_id,
        "disabled_at": component.disabled_at,
        "reason": component.reason,
        "disabled_by": component.disabled_by,
    }


class KillSwitchMixin:
    """The kill-switch list, as methods of ``SqlStore``."""

    if TYPE_CHECKING:
        _writer_engine: Engine

        async def _call(self, function: Callable[[DBAPICursor], _T]) -> _T: ...

        async def _read(self, function: Callable[[Reader], _T]) -> _T: ...

    _kill_switch_statements: KillSwitchStatements | None = None

    @property
    def _kill_switch_sql(self) -> KillSwitchStatements:
        if self._kill_switch_statements is None:
            self._kill_switch_statements = KillSwitchStatements(self._writer_engine.dialect)
        return self._kill_switch_statements

    async def list_disabled_components(self) -> list[DisabledComponent]:
        """Every disabled component, by id."""
        sql = self._kill_switch_sql
        rows = await self._read(lambda r: r.exec_driver_sql(sql.list, {}).all())
        return [
            DisabledComponent(
                component_id=row[0], disabled_at=float(row[1]), reason=row[2], disabled_by=row[3]
            )
            for row in rows
        ]

    async def disable_component(self, component: DisabledComponent) -> bool:
        """Add a component to the list; False if it was there already (unchanged)."""
        sql, params = self._kill_switch_sql, _params(component)

        def insert(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.insert, params)
            return bool(cursor.rowcount == 1)

        return await self._call(insert)

    async def enable_component(self, component_id: str) -> bool:
        """Remove a component from the list; False if it was not on it."""
        sql = self._kill_switch_sql

        def delete(cursor: DBAPICursor) -> bool:
            cursor.execute(sql.delete, {"component_id": component_id})
            return bool(cursor.rowcount == 1)

        return await self._call(delete)

    async def replace_disabled_components(self, components: Iterable[DisabledComponent]) -> None:
        """Make the list exactly ``components``, in one transaction."""
        sql = self._kill_switch_sql
        rows = [_params(component) for component in components]

        def replace(cursor: DBAPICursor) -> None:
            cursor.execute(sql.delete_all)
            for row in rows:
                cursor.execute(sql.insert, row)

        await self._call(replace)
