"""What the store raises, so that callers need not know SQLAlchemy's exceptions."""

from __future__ import annotations

__all__ = ["ConflictError", "ExecutionNotFound", "StoreClosed", "StoreError"]


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class StoreClosed(StoreError):
    """A write was submitted after ``SqlStore.close()``."""


class ConflictError(StoreError):
    """A write broke a constraint: a duplicate id or event seq, or an unknown reference.

    The database's own error is chained as ``__cause__``.
    """


class ExecutionNotFound(StoreError, LookupError):
    """The execution named by a write or a resume does not exist."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"execution {execution_id!r} not found")
        self.execution_id = execution_id
