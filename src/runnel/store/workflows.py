"""Workflow queries: every save is a new immutable version; deletes are soft.

Reads take a pooled SQLAlchemy read connection; writes take the group-commit writer's
DBAPI cursor, inside its transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine.interfaces import DBAPICursor

from runnel.model.workflow import Workflow
from runnel.store.codec import dumps, loads, workflow_from_dict, workflow_to_dict
from runnel.store.reading import Reader
from runnel.store.records import WorkflowVersionInfo
from runnel.store.statements import Statements

__all__ = [
    "delete_workflow",
    "encode_definition",
    "get_workflow",
    "list_versions",
    "list_workflows",
    "save_workflow",
    "workflow_exists",
]


def encode_definition(workflow: Workflow) -> str:
    """The ``workflow_versions.definition`` text. The version lives in its own column."""
    return dumps(workflow_to_dict(dataclasses.replace(workflow, version=0)))


def save_workflow(
    cursor: DBAPICursor,
    sql: Statements,
    workflow: Workflow,
    definition: str,
    created_by: str | None,
    now: float,
) -> int:
    """Write a new version of ``workflow`` (creating it if new); returns its number."""
    cursor.execute(
        sql.upsert_workflow.sql,
        {
            "id": workflow.id,
            "name": workflow.name,
            "description": workflow.description,
            "owner": workflow.owner,
            "group_id": workflow.group,
            "now": now,
        },
    )
    ((version,),) = cursor.fetchall()
    cursor.execute(
        sql.insert_workflow_version.sql,
        {
            "workflow_id": workflow.id,
            "version": version,
            "definition": definition,
            "created_at": now,
            "created_by": created_by,
        },
    )
    return int(version)


def delete_workflow(cursor: DBAPICursor, sql: Statements, workflow_id: str, now: float) -> bool:
    """Soft-delete; False when there was no such (undeleted) workflow."""
    cursor.execute(sql.delete_workflow.sql, {"id": workflow_id, "now": now})
    return cursor.rowcount == 1


def get_workflow(
    connection: Reader,
    sql: Statements,
    workflow_id: str,
    version: int | None,
    include_deleted: bool,
) -> Workflow | None:
    params: dict[str, Any] = {"id": workflow_id, "include_deleted": include_deleted}
    if version is None:
        statement = sql.select_latest_workflow
    else:
        statement = sql.select_workflow_version
        params["version"] = version
    row = connection.exec_driver_sql(statement.sql, params).one_or_none()
    return None if row is None else _workflow_from_row(row)


def list_workflows(connection: Reader, sql: Statements) -> list[Workflow]:
    """The latest version of every workflow that is not deleted, oldest first."""
    rows = connection.exec_driver_sql(sql.list_workflows.sql).all()
    return [_workflow_from_row(row) for row in rows]


def list_versions(
    connection: Reader, sql: Statements, workflow_id: str
) -> list[WorkflowVersionInfo]:
    rows = connection.exec_driver_sql(sql.list_versions.sql, {"id": workflow_id}).all()
    return [
        WorkflowVersionInfo(
            workflow_id=row.workflow_id,
            version=row.version,
            created_at=row.created_at,
            created_by=row.created_by,
        )
        for row in rows
    ]


def workflow_exists(connection: Reader, sql: Statements, workflow_id: str) -> bool:
    row = connection.exec_driver_sql(sql.workflow_exists.sql, {"id": workflow_id}).first()
    return row is not None


def _workflow_from_row(row: Row[Any]) -> Workflow:
    workflow = workflow_from_dict(loads(row.definition))
    return dataclasses.replace(workflow, version=row.version)
