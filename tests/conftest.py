"""Fixtures shared by every test directory."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner

from runnel.cli.main import app


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
