"""The store: SQLAlchemy Core tables, Alembic migrations, repositories and the queue.

``SqlStore`` is the one entry point. It implements the engine's ``CheckpointStore`` port
(every write goes through one group-commit writer thread) and the repository methods the
services use. SQLite (WAL, in the data directory) by default, PostgreSQL by URL.
"""

from __future__ import annotations

from runnel.store.connect import default_data_dir, default_database_url
from runnel.store.errors import ConflictError, ExecutionNotFound, StoreClosed, StoreError
from runnel.store.records import WorkflowVersionInfo
from runnel.store.sql import SqlStore
from runnel.store.writer import WriterStats

__all__ = [
    "ConflictError",
    "ExecutionNotFound",
    "SqlStore",
    "StoreClosed",
    "StoreError",
    "WorkflowVersionInfo",
    "WriterStats",
    "default_data_dir",
    "default_database_url",
]
