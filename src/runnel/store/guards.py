"""Startup guards: an up-to-date schema, and one process per SQLite file.

A multi-node deployment migrates explicitly (``runnel migrate``) rather than letting every
process that starts alter a shared schema, so ``serve`` and ``worker`` refuse a PostgreSQL
database that is behind the code. An SQLite file serves exactly one process: its queue is
woken in-process and its orphans are requeued on start, both of which assume no other
process shares it, so a second process is refused with an exclusive lock file.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from runnel.store.errors import StoreError

__all__ = ["DatabaseInUse", "ProcessLock", "SchemaOutOfDate", "lock_sqlite_file"]


class SchemaOutOfDate(StoreError):
    """The database is not at the revision this code expects."""

    def __init__(self, current: set[str], expected: set[str]) -> None:
        at = ", ".join(sorted(current)) or "empty"
        want = ", ".join(sorted(expected))
        super().__init__(
            f"the database schema is out of date (at {at}, this runnel needs {want}):"
            " run `runnel migrate` against it first"
        )
        self.current = current
        self.expected = expected


class DatabaseInUse(StoreError):
    """Another process already serves this SQLite file."""

    def __init__(self, database: str) -> None:
        super().__init__(
            f"another runnel process is using {database}: an SQLite database serves one"
            " process only. To run several API or worker processes, point them all at one"
            " PostgreSQL database (RUNNEL_DATABASE_URL=postgresql://...)"
        )
        self.database = database


@dataclass(slots=True)
class ProcessLock:
    """An exclusive lock held until ``release`` (or the process ends, even by SIGKILL)."""

    path: Path
    fd: int | None

    def release(self) -> None:
        """Give the lock up. Idempotent."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def lock_sqlite_file(url: URL) -> ProcessLock:
    """Lock ``<database>.lock`` next to the SQLite file; ``DatabaseInUse`` if another
    process holds it. The kernel drops the lock when the process dies, so a crash never
    leaves a stale lock behind."""
    assert url.database is not None
    path = Path(url.database).with_name(Path(url.database).name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(url.database) from None
    return ProcessLock(path, fd)
