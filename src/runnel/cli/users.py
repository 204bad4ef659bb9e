"""``runnel users create|list``: the people who sign in (flow8's cookie sign-in and keys).

The owner made on the first start is the first admin; ``--admin`` makes more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from runnel.cli.errors import EXIT_USAGE, UsageProblem
from runnel.cli.serve import load_settings
from runnel.services.errors import InvalidInput, ServiceError

if TYPE_CHECKING:
    from runnel.services.accounts import AccountService, UserInfo

__all__ = ["users_app"]

_T = TypeVar("_T")

users_app = typer.Typer(
    name="users",
    help="Create and list users (the server may be running).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The server's data directory (default: RUNNEL_DATA_DIR)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(problem: UsageProblem) -> NoReturn:
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    err.print(f"error: {problem.headline}", markup=False)
    for line in problem.lines:
        err.print(f"  - {line}", markup=False)
    raise typer.Exit(EXIT_USAGE)


def _with_accounts(data_dir: Path | None, use: Callable[[AccountService], Awaitable[_T]]) -> _T:
    """Open the data directory's store (no worker), make sure the owner exists (so that
    the first admin is always the owner), run ``use``, close it."""
    from runnel.platform import Platform

    settings = load_settings(data_dir=data_dir)
    config = settings.platform_config(worker=False)

    async def main() -> _T:
        platform = await Platform.open(config)
        try:
            await platform.accounts.ensure_owner(settings.data_dir)
            return await use(platform.accounts)
        finally:
            await platform.stop()

    try:
        return asyncio.run(main())
    except InvalidInput as exc:
        raise UsageProblem(exc.message.split(": ", 1)[0], [str(p) for p in exc.problems]) from None
    except ServiceError as exc:
        raise UsageProblem(exc.message) from None


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _user_json(user: UserInfo) -> dict[str, Any]:
    document = dataclasses.asdict(user)
    document["role"] = user.role.value
    return document


@users_app.command("create")
def create_command(
    email: Annotated[str, typer.Option("--email", help="Signs in with this address.")],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="At least 8 characters (asked for when left out).",
        ),
    ],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Create a user who signs in with an email and a password."""

    async def create(accounts: AccountService) -> UserInfo:
        return await accounts.create_user(
            email, password, display_name=name, role="admin" if admin else "member"
        )

    try:
        user = _with_accounts(data_dir, create)
    except UsageProblem as problem:
        _fail(problem)
    if as_json:
        typer.echo(json.dumps(_user_json(user), indent=2))
        return
    typer.echo(f"created {user.role.value} {user.id} ({user.email})")


@users_app.command("list")
def list_command(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List users, oldest first (the owner first)."""

    async def listing(accounts: AccountService) -> list[UserInfo]:
        return await accounts.list_users()

    try:
        users = _with_accounts(data_dir, listing)
    except UsageProblem as problem:
        _fail(problem)
    if as_json:
        typer.echo(json.dumps([_user_json(user) for user in users], indent=2))
        return
    for user in users:
        state = "disabled" if user.disabled else "active"
        typer.echo(
            f"{user.id}  {user.role.value:<6}  {user.email or '-'}  {user.display_name or '-'}"
            f"  created {_time(user.created_at)}  {state}"
        )
