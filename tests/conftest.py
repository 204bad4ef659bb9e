"""Fixtures shared by every test directory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dbfixtures import BACKENDS, postgres_database
from runnel.cli.main import app
from runnel.store import SqlStore


@dataclass(frozen=True, slots=True)
class CliResult:
    """What one ``runnel`` invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """``stdout`` parsed as exactly one JSON document."""
        return json.loads(self.stdout)


#: ``cli(*args, env=...)``: run the ``runnel`` command in-process, stdout and stderr apart.
RunCli = Callable[..., CliResult]


@pytest.fixture
def cli() -> RunCli:
    """Invoke the real Typer app (``runnel ...``) and capture its output."""
    runner = CliRunner()

    def invoke(*args: str, env: Mapping[str, str] | None = None) -> CliResult:
        result = runner.invoke(app, list(args), env=dict(env or {}), catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runnel.db'}"
    else:
        yield from postgres_database()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """An open, migrated store; closed after the test."""
    opened = SqlStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()
