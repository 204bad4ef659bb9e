"""What the administration commands (``runnel keys``, ``runnel users``) share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from runnel.cli.errors import EXIT_USAGE, UsageProblem
from runnel.cli.serve import load_settings
from runnel.services.errors import InvalidInput, ServiceError

if TYPE_CHECKING:
    from runnel.platform import Platform
    from runnel.services.accounts import AccountService

__all__ = ["AsJson", "DataDir", "fail", "format_time", "with_accounts", "with_platform"]

_T = TypeVar("_T")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The server's data directory (default: RUNNEL_DATA_DIR)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(problem: UsageProblem) -> NoReturn:
    """Print ``problem`` on stderr and exit with the usage code."""
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(f"error: {problem.headline}", markup=False)
    for line in problem.lines:
        err.print(f"  - {line}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def with_accounts(data_dir: Path | None, use: Callable[[AccountService], Awaitable[_T]]) -> _T:
    """Open the data directory's store (no worker), make sure the owner exists (so that the
    first admin is always the owner), run ``use``, close it. Service errors become usage
    problems."""

    async def accounts(platform: Platform) -> _T:
        return await use(platform.accounts)

    return with_platform(data_dir, accounts)


def with_platform(data_dir: Path | None, use: Callable[[Platform], Awaitable[_T]]) -> _T:
    """``with_accounts`` for commands that need more than the accounts."""
    from runnel.platform import Platform

    settings = load_settings(data_dir=data_dir)
    config = settings.platform_config(worker=False)

    async def main() -> _T:
        platform = await Platform.open(config)
        try:
            await platform.accounts.ensure_owner(settings.data_dir)
            return await use(platform)
        finally:
            await platform.stop()

    try:
        return asyncio.run(main())
    except InvalidInput as exc:
        raise UsageProblem(exc.message.split(": ", 1)[0], [str(p) for p in exc.problems]) from None
    except ServiceError as exc:
        raise UsageProblem(exc.message) from None


def format_time(timestamp: float | None) -> str:
    """A local date and time for tables, ``-`` when there is none."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
